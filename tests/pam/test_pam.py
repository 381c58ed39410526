"""Tier 4, PAM: the real libpam loads the module (our session driver, which
holds sessions open, and pamtester), against the real test cluster."""
import os
import secrets
import subprocess
import time

import pytest

from conftest import (DRIVER, STATE_DIR, Driver, assert_no_token_left, driver_once, helper, kubeconfig_of,
                      preload_env, run, security, token_path, user_token)

# Alone in a stack, libpam reports the module's own result: success 0,
# PAM_IGNORE as 6 (no module decided), PAM_SESSION_ERR as 14.
PAM_SUCCESS, PAM_IGNORED_ALONE, PAM_SESSION_ERR = 0, 6, 14


def mapped_config(workdir, user, server=None, extra=""):
    return workdir.alice_config(user, server=server, extra=extra)


def records(users, user):
    d = STATE_DIR / str(users.uid(user))
    return sorted(p.name for p in d.glob("session-*.json")) if d.exists() else []


def pending(users, user):
    """Revocations recorded as still to do."""
    d = STATE_DIR / str(users.uid(user))
    return [p.name for p in d.glob("grant-*.json") if '"state": "revoke"' in p.read_text()] if d.exists() else []


def test_open_and_close_with_the_driver(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user)
    svc = pam_service(f"config={cfg}")
    d = Driver(svc, user)
    assert d.open_rc == PAM_SUCCESS, d.lines
    kc = kubeconfig_of(users, user)
    assert d.env["KUBECONFIG"] == f"{kc}:{kc.parent / 'config'}"
    assert any(l.startswith("INFO kubectl: context test as team-a/alice") for l in d.lines)
    token = user_token(users, user)
    assert cluster.whoami(token) == "system:serviceaccount:team-a:alice"
    assert len(records(users, user)) == 1
    assert d.close() == ["close 0 Success"]
    assert_no_token_left(users, user)
    took = cluster.wait_refused(token)
    print(f"\ntoken refused {took:.1f}s after logout")
    assert records(users, user) == []


def test_open_and_close_with_pamtester(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user)
    svc = pam_service(f"config={cfg}", control="required", extra_after="")
    mark = cluster.audit_mark()
    p = run(["pamtester", svc, user, "open_session", "close_session"], check=False, env=preload_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "successfully opened a session" in p.stdout and "successfully been closed" in p.stdout
    assert_no_token_left(users, user)
    calls = [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]
    assert [(e["verb"], e["objectRef"].get("subresource") or e["objectRef"]["resource"]) for e in calls] == [
        ("create", "secrets"), ("create", "token"), ("delete", "secrets")]


def test_two_sessions_of_one_user(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user)
    svc = pam_service(f"config={cfg}")
    first = Driver(svc, user)
    mark = cluster.audit_mark()
    second = Driver(svc, user)
    assert first.open_rc == second.open_rc == PAM_SUCCESS
    # The second concurrent session costs nothing: the token both share is fresh.
    calls = [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]
    assert calls == []
    token = user_token(users, user)
    assert first.close() == ["close 0 Success"]
    time.sleep(11)  # past the API server's authentication cache
    assert user_token(users, user) == token
    assert cluster.whoami(token) == "system:serviceaccount:team-a:alice"
    assert second.close() == ["close 0 Success"]
    assert_no_token_left(users, user)
    cluster.wait_refused(token)


def test_out_of_scope_users_are_ignored_without_requests(cluster, workdir, users, pam_service, installed):
    mapped = users.make()
    unmapped = users.make()
    low = users.make()
    run(["usermod", "-u", "999", low])
    cfg = mapped_config(workdir, mapped)
    # A helper that records each start, to prove root never starts it.
    marker = workdir.path / "started"
    wrapper = installed / "recording-helper"
    wrapper.write_text(f"#!/bin/sh\necho \"$1 $3\" >> {marker}\nexec {installed / 'pam-kubeconfig'} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    svc = pam_service(f"config={cfg} helper={wrapper}", control="required", extra_after="")
    mark = cluster.audit_mark()
    for user in (unmapped, low):
        rc, lines, _ = driver_once(svc, user)
        assert rc == PAM_IGNORED_ALONE, lines
        assert not kubeconfig_of(users, user).exists()
    rc, lines, _ = driver_once(svc, "root")
    assert rc == PAM_IGNORED_ALONE
    started = marker.read_text().split()
    assert "root" not in started and unmapped in started and low in started
    assert not [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]


@pytest.mark.parametrize("fault", ["down", "blackhole"])
@security("API server unreachable or silent: the login is never blocked past the deadline")
def test_outage_never_blocks_login_past_the_deadline(cluster, workdir, users, pam_service, proxy, fault):
    user = users.make()
    cfg = mapped_config(workdir, user, server=proxy.server)
    proxy.set(fault)
    optional = pam_service(f"config={cfg} timeout=3")
    # Open and close each within timeout=: a logout never skips a cluster that
    # failed lately (it tries the DELETE), so the two may each take it whole.
    rc, lines, took = driver_once(optional, user)
    assert rc == PAM_SUCCESS, lines  # optional: the session opens
    assert took < 2 * 3 + 1, took
    assert not kubeconfig_of(users, user).exists()
    required = pam_service(f"config={cfg} timeout=3", control="required")
    rc, lines, took = driver_once(required, user)
    assert rc == PAM_SESSION_ERR, lines
    assert took < 2 * 3 + 1, took


def test_close_during_outage_leaves_a_revocation_for_gc(cluster, workdir, users, pam_service, proxy):
    user = users.make()
    cfg = mapped_config(workdir, user, server=proxy.server)
    svc = pam_service(f"config={cfg}")
    d = Driver(svc, user)
    assert d.open_rc == PAM_SUCCESS
    token = user_token(users, user)
    proxy.set("down")
    assert d.close() == [f"close {PAM_SESSION_ERR} Cannot make/remove an entry for the specified session"]
    assert_no_token_left(users, user)  # the token file goes regardless
    assert len(pending(users, user)) == 1
    assert cluster.whoami(token) == "system:serviceaccount:team-a:alice"
    assert helper("gc", "--config", cfg).returncode == 1  # still down: stays pending
    proxy.set("forward")
    assert helper("gc", "--config", cfg).returncode == 0
    assert pending(users, user) == []
    cluster.wait_refused(token)


def test_gc_after_a_crash_revokes(cluster, workdir, users):
    user = users.make()
    cfg = mapped_config(workdir, user)
    session_process = subprocess.Popen(["sleep", "600"])
    p = helper("open", "--user", user, "--session", "crashed1", "--config", cfg, "--pid", str(session_process.pid))
    assert p.returncode == 0, p.stderr
    token = user_token(users, user)
    assert helper("gc", "--config", cfg).returncode == 0
    assert token_path(users, user).exists()  # the session is alive: nothing to collect
    session_process.kill()
    session_process.wait()
    assert helper("gc", "--config", cfg).returncode == 0
    assert_no_token_left(users, user)
    assert records(users, user) == []
    cluster.wait_refused(token)


def test_refresh_renews_near_expiry(cluster, workdir, users):
    user = users.make()
    cfg = mapped_config(workdir, user, extra="token:\n  ttl: 10m\n  refresh_before: 99%\n")
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "r1", "--config", cfg, "--pid",
                      str(holder.pid)).returncode == 0
        old = user_token(users, user)
        mark = cluster.audit_mark()
        assert helper("refresh", "--config", cfg).returncode == 0
        assert user_token(users, user) == old  # due 6s after the mint (1% of 10m): not yet
        assert not [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]
        time.sleep(7)
        assert helper("refresh", "--config", cfg).returncode == 0
        new = user_token(users, user)
        assert new != old
        assert cluster.whoami(new) == "system:serviceaccount:team-a:alice"
    finally:
        holder.kill()
        holder.wait()


def test_refresh_revokes_a_user_who_left_the_group(cluster, workdir, users):
    cluster.ensure_sa("bastion-access", "admin", clusterrole="view")
    group = f"kcg{secrets.token_hex(3)}"
    user = users.make(groups=[group])
    cfg = workdir.write_config(f"""  - group: {group}
    cluster: test
    serviceaccount: bastion-access/admin
""")
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "g1", "--config", cfg, "--pid",
                      str(holder.pid)).returncode == 0
        token = user_token(users, user)
        run(["gpasswd", "-d", user, group])
        assert helper("refresh", "--config", cfg).returncode == 0
        cluster.wait_refused(token)
        assert_no_token_left(users, user)
    finally:
        holder.kill()
        holder.wait()
        run(["groupdel", group], check=False)


def test_refresh_ignores_closed_sessions(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user, extra="token:\n  ttl: 10m\n  refresh_before: 99%\n")
    svc = pam_service(f"config={cfg}")
    rc, lines, _ = driver_once(svc, user)
    assert rc == PAM_SUCCESS
    time.sleep(1)
    mark = cluster.audit_mark()
    assert helper("refresh", "--config", cfg).returncode == 0
    assert not [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]
    assert_no_token_left(users, user)


@security("the module exports only its two entry points and links none of the helper's libraries")
def test_module_exports_only_the_session_entry_points():
    from conftest import MODULE
    out = run(["nm", "-D", "--defined-only", MODULE]).stdout
    exported = sorted(l.split()[-1] for l in out.splitlines() if l.split()[1] in ("T", "W", "D", "B"))
    assert exported == ["pam_sm_close_session", "pam_sm_open_session"]
    libs = run(["ldd", MODULE]).stdout
    for lib in ("libcurl", "libjansson", "libyaml", "libcrypto", "libssl"):
        assert lib not in libs


@security("the module, loaded by the real libpam, is clean under valgrind")
def test_module_is_clean_under_valgrind(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user)
    svc = pam_service(f"config={cfg}")
    p = run(["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
             "--track-fds=no", DRIVER, svc, user], check=False, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "ERROR SUMMARY: 0 errors" in p.stderr
    assert "open 0 Success" in p.stdout and "close 0 Success" in p.stdout


@security("a caller with its own SIGCHLD handler, or SIGCHLD ignored")
def test_caller_sigchld_handler_is_respected(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped_config(workdir, user)
    svc = pam_service(f"config={cfg}", control="required", extra_after="")
    for mode in ("ignore", "handler"):
        rc, lines, _ = driver_once(svc, user, "--sigchld", mode)
        assert rc == PAM_SUCCESS, (mode, lines)
        assert "close 0 Success" in lines


def test_refresh_revokes_an_expired_account_and_removes_its_token(cluster, workdir, users):
    user = users.make()
    cfg = mapped_config(workdir, user)
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "x1", "--config", cfg, "--pid",
                      str(holder.pid)).returncode == 0
        token = user_token(users, user)
        run(["chage", "-E", "1", user])  # expired since 1970-01-02
        assert helper("refresh", "--config", cfg).returncode == 0
        cluster.wait_refused(token)
        assert_no_token_left(users, user)
    finally:
        holder.kill()
        holder.wait()
