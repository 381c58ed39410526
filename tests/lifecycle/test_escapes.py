"""Lifecycle tier: the seven escapes of issue 11, each a named regression test
against the real test cluster. Every assertion that matters is made on the API
server itself (admin kubectl for our Secrets, SelfSubjectReview for tokens,
after the ~10 s authentication cache), never on our own records.

Sessions go through the real libpam and the project's session driver, so the
module's timeout= is the deadline that counts. Each test names its own host_id,
so its Secrets are its own."""
import os
import re
import secrets
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import (STATE_DIR, Driver, Stopper, current_token, driver_once, kubeconfig_of, kubectl_as,
                      our_secrets, run, run_bounded, security, unique_host_id)
from faultproxy import Rule
from standins import Imds

ALICE = "system:serviceaccount:team-a:alice"
ADMIN = "system:serviceaccount:bastion-access:admin"
FLAKY = "system:serviceaccount:bastion-users:kct-flaky"
# Short network timeouts: a fault costs seconds, not the defaults' tens.
NET = "network:\n  connect_timeout: 2s\n  request_timeout: 2s\n"
# The file goes at the last logout, so close, gc and refresh must touch the home
# (through a process of the user's) after they revoke.
REMOVE = "kubeconfig:\n  remove_on_logout: true\n"
# A 10m token is due for rotation 6 s after it was minted: the first version's
# refresh (no --now) renews then.
DUE = "token:\n  ttl: 10m\n  refresh_before: 99%\n"


def sa(ns, name):
    return f"system:serviceaccount:{ns}:{name}"


def config(workdir, host, mappings, clusters=None, extra=""):
    return workdir.write_config(mappings, clusters, extra=f"host_id: {host}\n" + extra)


def alice_rule(user, cluster="test"):
    return f"  - user: {user}\n    cluster: {cluster}\n    serviceaccount: team-a/alice\n"


def assert_no_secret(cluster, host, user):
    left = our_secrets(cluster, host, user)
    assert not left, f"revocation Secrets of {user} on host {host} still exist: {left}"


def refresh_now(cfg, user, deadline_ms=10000):
    """refresh --now USER (the test fails on a helper without --now)."""
    return run_bounded(["refresh", "--config", cfg], deadline_ms, now_user=user)


def gc(cfg, deadline_ms=10000):
    return run_bounded(["gc", "--config", cfg], deadline_ms)


def tokens_named_in_home(users, user, tokens):
    """Files in the home that hold one of the tokens, a `token:` line, or a
    `tokenFile:` that names a file that still exists."""
    bad = []
    for p in users.home(user).rglob("*"):
        if p.is_symlink() or not p.is_file():
            continue
        text = p.read_text(errors="replace")
        bad += [f"{p} holds a token" for t in tokens if t and t in text]
        bad += [f"{p}: {m.group(0).strip()[:20]}..." for m in re.finditer(r"^\s*token:\s*\S+", text, re.M)]
        for m in re.finditer(r"^\s*tokenFile:\s*(\S+)", text, re.M):
            if Path(m.group(1).strip("'\"")).exists():
                bad.append(f"{p} names {m.group(1)}, which still exists")
    return bad


@pytest.fixture
def host():
    return unique_host_id()


# ---- 1: a user hangs root by stopping their own processes ----------------------


@security("a user who SIGSTOPs their processes during logout: close returns within timeout= and revokes")
def test_escape1_sigstop_cannot_hang_close(cluster, workdir, users, pam_service, host):
    user = users.make()
    cfg = workdir.alice_config(user, extra=f"host_id: {host}\n" + NET + REMOVE)
    svc = pam_service(f"config={cfg} timeout=5")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    assert cluster.whoami(token) == ALICE
    with Stopper(user) as stopper:
        start = time.monotonic()
        lines = d.close()
        took = time.monotonic() - start
    print(f"\nclose took {took:.2f}s; the user stopped {len(stopper.victims)} of their processes")
    assert stopper.victims, "the user's stopper caught no process of the helper: this run proved nothing"
    assert took < 5 + 1, f"close took {took:.1f}s with timeout=5: {lines}"
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token)


@security("a user who SIGSTOPs their processes: gc returns within its deadline and revokes their stale session")
def test_escape1_sigstop_cannot_hang_gc(cluster, workdir, users, pam_service, host):
    user = users.make()
    cfg = workdir.alice_config(user, extra=f"host_id: {host}\n" + NET + REMOVE)
    svc = pam_service(f"config={cfg} timeout=5")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    d.p.kill()  # the session's process is gone: gc's to collect
    d.p.wait()
    with Stopper(user) as stopper:
        r = gc(cfg, deadline_ms=5000)
    print(f"\ngc: {r!r}; the user stopped {len(stopper.victims)} of their processes")
    assert stopper.victims, "the user's stopper caught no process of the helper: this run proved nothing"
    assert not r.killed and r.took < 5 + 1, f"gc overran its 5 s deadline: {r!r}"
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token)


@security("a user who SIGSTOPs their processes: refresh returns within its deadline and revokes what no longer maps")
def test_escape1_sigstop_cannot_hang_refresh(cluster, workdir, users, pam_service, host):
    user = users.make()
    cfg = workdir.alice_config(user, extra=f"host_id: {host}\n" + NET + REMOVE)
    svc = pam_service(f"config={cfg} timeout=5")
    d = Driver(svc, user)
    try:
        assert d.open_rc == 0, d.lines
        token = current_token(users, user)
        # The admin takes the user's access away; the next refresh must revoke it.
        config(workdir, host, alice_rule("nobody-else"), extra=NET + REMOVE)
        with Stopper(user) as stopper:
            r = run_bounded(["refresh", "--config", cfg], 5000, now_user=user)
        print(f"\nrefresh: {r!r}; the user stopped {len(stopper.victims)} of their processes")
        assert stopper.victims, "the user's stopper caught no process of the helper: this run proved nothing"
        assert not r.killed and r.took < 5 + 1, f"refresh overran its 5 s deadline: {r!r}"
        assert_no_secret(cluster, host, user)
        cluster.wait_refused(token)
    finally:
        d.close()


# ---- 2: refresh merged grants by cluster --------------------------------------------


def test_escape2_refresh_revokes_the_grant_of_a_group_the_user_left(cluster, workdir, users, pam_service, host):
    cluster.ensure_sa("bastion-access", "admin", clusterrole="view")
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    group = f"kcg{secrets.token_hex(3)}"
    user = users.make(groups=[group])
    rules = (f"  - group: {group}\n    cluster: test\n    serviceaccount: bastion-access/admin\n"
             + alice_rule(user))
    cfg = config(workdir, host, rules, extra=NET + DUE)
    svc = pam_service(f"config={cfg} timeout=10")
    first = second = None
    try:
        first = Driver(svc, user)
        assert first.open_rc == 0, first.lines
        admin_token = current_token(users, user)
        assert cluster.whoami(admin_token) == ADMIN
        run(["gpasswd", "-d", user, group])
        second = Driver(svc, user)
        assert second.open_rc == 0, second.lines
        assert cluster.whoami(current_token(users, user)) == ALICE
        r = refresh_now(cfg, user)
        assert not r.killed, r
        # The admin grant maps no more: its Secret goes, and its token with it.
        left = [s for s in our_secrets(cluster, host, user) if s[0] == "bastion-access"]
        assert not left, f"the admin ServiceAccount's revocation Secret survived refresh: {left}"
        cluster.wait_refused(admin_token)
        # The grant that still maps keeps working for the open sessions.
        assert cluster.whoami(current_token(users, user)) == ALICE
        assert first.close() and second.close()
        first = second = None
        assert not gc(cfg).killed
        assert_no_secret(cluster, host, user)
    finally:
        for d in (first, second):
            if d:
                d.close()
        run(["groupdel", group], check=False)


def test_escape2_a_refresh_that_fails_for_one_cluster_keeps_its_context(cluster, workdir, users, pam_service,
                                                                       fault_proxy, host):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    cluster.ensure_sa("bastion-users", "kct-flaky", clusterrole="view")
    flaky = fault_proxy("flaky")
    user = users.make()
    clusters = [workdir.cluster_entry("test"), workdir.cluster_entry("flaky", server=flaky.url)]
    # Its own namespace and account: the two entries share the API server, never a Secret.
    rules = alice_rule(user) + f"  - user: {user}\n    cluster: flaky\n    serviceaccount: bastion-users/kct-flaky\n"
    cfg = config(workdir, host, rules, clusters, extra=NET + DUE)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    try:
        assert d.open_rc == 0, d.lines
        assert cluster.whoami(current_token(users, user, "flaky")) == FLAKY
        flaky.add(Rule("status", method="POST", path=r"/token$", status=500))
        r = refresh_now(cfg, user)
        assert not r.killed, r
        flaky.clear()
        kc = kubeconfig_of(users, user)
        who = kubectl_as(user, kc, "--context", "flaky", "auth", "whoami", "-o",
                         "jsonpath={.status.userInfo.username}")
        assert who.stdout == FLAKY, f"context flaky stopped working after a refresh that failed there: {who.stderr}"
        who = kubectl_as(user, kc, "--context", "test", "auth", "whoami", "-o",
                         "jsonpath={.status.userInfo.username}")
        assert who.stdout == ALICE, who.stderr
    finally:
        d.close()


# ---- 3: a failed login racing the last logout ---------------------------------------------


def test_escape3_a_failed_login_racing_the_last_logout_orphans_nothing(cluster, workdir, users, pam_service,
                                                                      fault_proxy, host):
    proxy = fault_proxy()
    user = users.make()
    cfg = workdir.alice_config(user, server=proxy.url, extra=f"host_id: {host}\n" + NET)
    svc = pam_service(f"config={cfg} timeout=10")
    b = Driver(svc, user)
    assert b.open_rc == 0, b.lines
    token_b = current_token(users, user)
    assert cluster.whoami(token_b) == ALICE
    # Login A's TokenRequest is held at the proxy, then answered 500.
    held = proxy.add(Rule("hold", method="POST", path=r"/token$", status=500))
    a_result = {}
    a = threading.Thread(target=lambda: a_result.update(zip(("rc", "lines", "took"), driver_once(svc, user))))
    a.start()
    raced = held.hit.wait(8)
    # B logs out while A is in flight (or, if A needs no request, after it).
    b_close = b.close()
    held.release()
    a.join(30)
    print(f"\nA's token request {'was' if raced else 'was never'} held; B: {b_close}; A: {a_result.get('lines')}")
    proxy.clear()
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token_b)
    bad = tokens_named_in_home(users, user, [token_b])
    assert not bad, bad


# ---- 4: a remap within one namespace ---------------------------------------------------------


def test_escape4_a_remap_within_one_namespace_gives_the_session_the_new_account(cluster, workdir, users,
                                                                              pam_service, host):
    for name in ("kct-one", "kct-two"):
        cluster.ensure_sa("bastion-users", name, clusterrole="view")
    user = users.make()
    rule = "  - user: {u}\n    cluster: test\n    serviceaccount: bastion-users/{sa}\n"
    cfg = config(workdir, host, rule.format(u=user, sa="kct-one"), extra=NET)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    try:
        assert d.open_rc == 0, d.lines
        old = current_token(users, user)
        assert cluster.whoami(old) == sa("bastion-users", "kct-one")
        config(workdir, host, rule.format(u=user, sa="kct-two"), extra=NET)
        r = run_bounded(["refresh", "--config", cfg], 10000, now_user=user)
        assert not r.killed, r
        cluster.wait_refused(old)
        new = current_token(users, user, missing_ok=True)
        assert new and cluster.whoami(new) == sa("bastion-users", "kct-two"), (
            "after the remap the open session has no token that works as bastion-users/kct-two")
    finally:
        d.close()
    assert not gc(cfg).killed
    assert_no_secret(cluster, host, user)


# ---- 5: a late DELETE -----------------------------------------------------------------------------


@security("a revocation's DELETE that arrives late cannot delete the Secret a newer login re-created")
def test_escape5_a_late_delete_cannot_kill_a_fresh_secret(cluster, workdir, users, pam_service, fault_proxy, host):
    proxy = fault_proxy()
    user = users.make()
    # The late DELETE times out at the client: with the default after_failure the
    # next login would skip the cluster as down and never reach the race.
    net = NET + "  after_failure: 0s\n"
    cfg = workdir.alice_config(user, server=proxy.url, extra=f"host_id: {host}\n" + net)
    svc = pam_service(f"config={cfg} timeout=10")
    x = Driver(svc, user)
    assert x.open_rc == 0, x.lines
    token_x = current_token(users, user)
    # The first revoker's DELETE reaches the API server 6 s after it was sent.
    late = proxy.add(Rule("delay", method="DELETE", path=r"/secrets/", delay=6, times=1))
    closing = threading.Thread(target=x.close)
    closing.start()
    assert late.hit.wait(10), "the logout sent no DELETE"
    y = Driver(svc, user)
    try:
        assert y.open_rc == 0, y.lines
        token_y = current_token(users, user, missing_ok=True)
        assert token_y, f"the login during the revocation wrote no token: {y.lines}"
        assert cluster.whoami(token_y) == ALICE
        assert late.done.wait(20), "the late DELETE never left the proxy"
        closing.join(30)
        time.sleep(11)  # past the authentication cache
        deletes = proxy.requests("DELETE", "/secrets/")
        print(f"\nDELETEs: {[(e['status'], e.get('precondition_uid')) for e in deletes]}")
        assert cluster.whoami(token_y) == ALICE, (
            "the new session's token died: a late DELETE removed the Secret the new login re-created "
            f"(DELETEs with preconditions.uid: {[e.get('precondition_uid') for e in deletes]})")
    finally:
        y.close()
    assert not gc(cfg).killed
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token_x)
    cluster.wait_refused(token_y)


# ---- 6: the login's budget ---------------------------------------------------------------------


def silent_cluster(kind, name, silent_url, imds_url, ca):
    """A cluster entry whose IMDS, STS or EKS stand-in accepts and never answers."""
    if kind == "eks":
        return (f"  - name: {name}\n    eks:\n      cluster_name: {name}\n      region: us-west-2\n"
                f"      endpoint: {silent_url}\n      endpoint_ca: {ca}\n"
                f"    auth:\n      eks:\n        cluster_name: {name}\n        region: us-west-2\n"
                f"        imds_endpoint: {imds_url}\n")
    auth = (f"        imds_endpoint: {silent_url.replace('https://', 'http://')}\n" if kind == "imds" else
            f"        imds_endpoint: {imds_url}\n        role_arn: arn:aws:iam::111122223333:role/bastion-minter\n"
            f"        sts_endpoint: {silent_url}\n        endpoint_ca: {ca}\n")
    return (f"  - name: {name}\n    server: SERVER\n    certificate_authority: {ca}\n"
            f"    auth:\n      eks:\n        cluster_name: {name}\n        region: us-west-2\n{auth}")


@pytest.mark.parametrize("kind", ["imds", "sts", "eks"])
@security("a cluster whose AWS side is silent: the login keeps the module's deadline and writes the healthy one")
def test_escape6_a_silent_cluster_costs_one_login_within_the_deadline(cluster, workdir, users, pam_service,
                                                                     fault_proxy, host, kind):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    silent = fault_proxy("silent")
    if kind == "imds":
        silent.set_mode("blackhole")  # plain HTTP: accepts, never answers
    else:
        silent.add(Rule("silence"))  # TLS completes (the cluster's CA), the request is never answered
    imds = Imds()
    name = f"silent-{secrets.token_hex(3)}"
    user = users.make()
    try:
        entry = silent_cluster(kind, name, silent.url, imds.url, workdir.ca).replace("SERVER", cluster.server)
        # The silent cluster comes first: a login that works cluster after cluster meets it first.
        cfg = config(workdir, host, alice_rule(user, name) + alice_rule(user),
                     clusters=[entry, workdir.cluster_entry("test")])
        svc = pam_service(f"config={cfg} timeout=3")
        took = []
        for attempt in range(2):
            start = time.monotonic()
            d = Driver(svc, user)
            took.append(time.monotonic() - start)
            try:
                assert d.open_rc == 0, d.lines
                print(f"\nlogin {attempt + 1}: {took[-1]:.2f}s {d.lines}")
                assert took[-1] < 3 + 1, f"login {attempt + 1} took {took[-1]:.1f}s with timeout=3"
                assert any(l.startswith("INFO kubectl: context test ") for l in d.lines), (
                    f"login {attempt + 1} did not write the healthy cluster: {d.lines}")
                assert cluster.whoami(current_token(users, user)) == ALICE
            finally:
                d.close()
        assert took[1] < 1.5, f"the second login did not skip the failed cluster: {took[1]:.1f}s"
    finally:
        imds.close()


# ---- 7: an unreadable record ----------------------------------------------------------------------


@security("a session record that cannot be read is revoked by gc, not dropped")
def test_escape7_an_unreadable_record_is_revoked_not_dropped(cluster, workdir, users, pam_service, host):
    user = users.make()
    cfg = workdir.alice_config(user, extra=f"host_id: {host}\n" + NET)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    garbled = 0
    for p in (STATE_DIR / str(users.uid(user))).rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.write_bytes(b"\x00{garbled\xff" + os.urandom(32))
            garbled += 1
    assert garbled, "the user has no state to garble"
    d.p.send_signal(signal.SIGKILL)  # the session's process is gone
    d.p.wait()
    r = gc(cfg)
    assert not r.killed, r
    print(f"\n{garbled} files garbled; gc: {r!r}")
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token)


@security("records unreadable and then the account deleted: gc still revokes (the name is kept in a file name)")
def test_escape7_unreadable_records_of_a_deleted_account_are_revoked(cluster, workdir, users, pam_service, host):
    """Found by the schedule tier (seed 631055189): the Secret is named after
    the account, so once both the records' contents and the account were gone,
    nothing named the Secret to delete."""
    user = users.make()
    cfg = workdir.alice_config(user, extra=f"host_id: {host}\n" + NET)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    for p in (STATE_DIR / str(users.uid(user))).rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.write_bytes(b"\x00{garbled\xff" + os.urandom(32))
    d.p.send_signal(signal.SIGKILL)
    d.p.wait()
    run(["userdel", "-f", user])
    r = gc(cfg)
    assert not r.killed, r
    assert_no_secret(cluster, host, user)
    cluster.wait_refused(token)
