"""Tier 2, the helper against the real test cluster, with the minter identity
bound by `pam-kubeconfig rbac`'s output (config/rbac/minter.yaml)."""
import grp
import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BUILD, REPO, file_mode, fresh_uid, helper, kubeconfig_of, kubectl_as, run, security, token_path, user_token)

VIEW_RULE = """  - user: "*"
    cluster: test
    serviceaccount: bastion-users/u-{user_safe}
    create: true
    clusterrole: view
"""


def open_session(user, config, session=None, pid=None):
    session = session or secrets.token_hex(8)
    args = ["open", "--user", user, "--session", session, "--config", config, "--rhost", "198.51.100.7",
            "--service", "sshd"]
    # The session's process must outlive the call for the record to stay live:
    # by default the test's own process stands in for sshd's.
    args += ["--pid", str(pid or os.getpid())]
    p = helper(*args)
    for line in p.stdout.splitlines():
        if line.startswith("KUBECONFIG="):
            assert_parses(line.split("=", 1)[1])  # every file written parses with the real kubectl
    return p, session


def close_session(user, config, session, pid=None):
    return helper("close", "--user", user, "--session", session, "--config", config,
                  "--pid", str(pid or os.getpid()))


def assert_parses(path):
    """Every file written parses with the real kubectl."""
    out = run(["kubectl", "config", "view", "--kubeconfig", path, "-o", "jsonpath={.current-context}"])
    return out.stdout


def test_open_writes_a_working_kubeconfig(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user)
    p, session = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    kc = kubeconfig_of(users, user)
    assert f"KUBECONFIG={kc}:{kc.parent / 'config'}" in p.stdout.splitlines()
    assert re.search(r"^MESSAGE=kubectl: context test as team-a/alice \(its token renews itself", p.stdout, re.M)
    st = os.stat(kc)
    assert (st.st_uid, file_mode(kc), file_mode(kc.parent)) == (users.uid(user), 0o600, 0o700)
    assert assert_parses(kc) == "test"
    text = kc.read_text()
    assert "certificate-authority-data:" in text and "namespace: team-a" in text
    # The file names the token file and holds no token; the token file is the user's alone.
    tf = token_path(users, user)
    assert f"tokenFile: {tf}" in text and "token:" not in text
    st = os.stat(tf)
    assert (st.st_uid, file_mode(tf), file_mode(tf.parent), os.stat(tf.parent).st_uid) == (
        users.uid(user), 0o400, 0o711, 0)

    who = kubectl_as(user, kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == "system:serviceaccount:team-a:alice", who.stderr
    allowed = kubectl_as(user, kc, "get", "pods")
    assert allowed.returncode == 0, allowed.stderr
    forbidden = kubectl_as(user, kc, "get", "secrets")
    assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr
    assert close_session(user, cfg, session).returncode == 0


@pytest.mark.parametrize("size", ["small", "large"])
def test_group_rule(cluster, workdir, users, size):
    """A group rule maps its members, also in a group whose /etc/group line is
    past 16 KiB (a whole department: glibc wants a larger buffer, ERANGE)."""
    cluster.ensure_sa("bastion-access", "admin", clusterrole="edit")
    group = f"kcg{secrets.token_hex(3)}"
    user = users.make(groups=[group])
    if size == "large":
        subprocess.run(["gpasswd", "-M", ",".join([user] + ["nobody"] * 3000), group], check=True)
        assert len(grp.getgrnam(group).gr_mem) > 3000
    cfg = workdir.write_config(f"""  - user: someone-else
    cluster: test
    serviceaccount: team-a/alice
  - group: {group}
    cluster: test
    serviceaccount: bastion-access/admin
""")
    p, session = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    kc = kubeconfig_of(users, user)
    who = kubectl_as(user, kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == "system:serviceaccount:bastion-access:admin"
    # refresh reads every account at once (a snapshot of the databases): the
    # group still maps, so nothing changes, and its verdict is kept (the state
    # directory is 2 s old: lifecycle/verdicts.h); once the user leaves the group the
    # mapping no longer matches that verdict, and refresh revokes.
    token = user_token(users, user)
    time.sleep(2)
    assert helper("refresh", "--config", cfg).returncode == 0
    r = helper("refresh", "--config", cfg, "--debug")
    held = re.search(r"refresh: (\d+) users not read again", r.stderr)
    assert r.returncode == 0 and held and int(held.group(1)) >= 1, r.stderr
    assert user_token(users, user) == token
    assert cluster.whoami(token) == "system:serviceaccount:bastion-access:admin"
    run(["gpasswd", "-d", user, group])
    r = helper("refresh", "--config", cfg)
    assert r.returncode == 0, r.stderr
    cluster.wait_refused(token)
    close_session(user, cfg, session)


@security("the group database reports an error during refresh: grants are left, not revoked")
def test_refresh_leaves_grants_while_the_group_database_fails(cluster, workdir, users):
    """A refresh that cannot read the user's groups concludes nothing: the
    open session keeps its token. Once the database answers, a group the
    user really left is revoked by the next refresh."""
    cluster.ensure_sa("bastion-access", "admin", clusterrole="edit")
    group = f"kcg{secrets.token_hex(3)}"
    user = users.make(groups=[group])
    cfg = workdir.write_config(f"  - group: {group}\n    cluster: test\n    serviceaccount: bastion-access/admin\n")
    p, session = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    token = user_token(users, user)
    run(["gpasswd", "-d", user, group])
    failing = {**os.environ, "LD_PRELOAD": str(BUILD / "tests" / "failsyscall.so"),
               "KC_FAIL": "getgrgid_r"}
    r = helper("refresh", "--config", cfg, "--now", user, env=failing)
    assert "left as it is until the next round" in r.stderr, r.stderr
    assert cluster.whoami(token) == "system:serviceaccount:bastion-access:admin"
    assert token_path(users, user).exists()
    r = helper("refresh", "--config", cfg, "--now", user)
    assert r.returncode == 0, r.stderr
    cluster.wait_refused(token)
    close_session(user, cfg, session)


def test_unmapped_user_is_out_of_scope(cluster, workdir, users):
    user = users.make()
    cfg = workdir.write_config("""  - user: nobody-here
    cluster: test
    serviceaccount: team-a/alice
""")
    mark = cluster.audit_mark()
    p, _ = open_session(user, cfg)
    assert p.returncode == 10
    assert not kubeconfig_of(users, user).exists()
    assert not [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]


def test_star_rule_creates_reuses_and_rebinds(cluster, workdir, users):
    user = users.make()
    cfg = workdir.write_config(VIEW_RULE)
    sa = f"u-{user}"
    mark = cluster.audit_mark()
    p, s1 = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    created = [e for e in cluster.audit_events(mark)
               if e["user"]["username"] == "pam-kubeconfig" and e["verb"] == "create"
               and e["objectRef"]["resource"] in ("serviceaccounts", "rolebindings")
               and "subresource" not in e["objectRef"]]
    assert {e["objectRef"]["resource"] for e in created} == {"serviceaccounts", "rolebindings"}
    rb = cluster.kubectl("-n", "bastion-users", "get", "rolebinding", f"pam-kubeconfig:{sa}",
                         "-o", "jsonpath={.roleRef.name}")
    assert rb.stdout == "view"
    kc = kubeconfig_of(users, user)
    assert kubectl_as(user, kc, "get", "pods").returncode == 0
    assert kubectl_as(user, kc, "create", "configmap", "x").returncode != 0  # view cannot write

    # The next login reuses them: no ServiceAccount or binding request at all.
    close_session(user, cfg, s1)
    mark = cluster.audit_mark()
    p, s2 = open_session(user, cfg)
    assert p.returncode == 0
    reuse = [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]
    assert [e["objectRef"].get("subresource") or e["objectRef"]["resource"] for e in reuse] == ["secrets", "token"]
    close_session(user, cfg, s2)

    # The config's role changes: the binding is replaced (with the RBAC for that config).
    cfg = workdir.write_config(VIEW_RULE.replace("clusterrole: view", "clusterrole: edit"))
    manifest = helper("rbac", "--config", cfg, check=True).stdout
    run(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "apply", "-f", "-"], input=manifest)
    try:
        p, s3 = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        rb = cluster.kubectl("-n", "bastion-users", "get", "rolebinding", f"pam-kubeconfig:{sa}",
                             "-o", "jsonpath={.roleRef.name}")
        assert rb.stdout == "edit"
        assert kubectl_as(user, kc, "create", "configmap", f"x{secrets.token_hex(3)}").returncode == 0
        close_session(user, cfg, s3)
    finally:
        run(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "apply", "-f", REPO / "config/rbac/minter.yaml"])


def _badname_user(users, name):
    """A user whose name useradd refuses by default (dots, uppercase)."""
    run(["userdel", "-r", "-f", name], check=False)  # a leftover of an interrupted run
    run(["useradd", "--badname", "-m", "-u", str(fresh_uid()), name])
    users.created.append(name)
    return name


@security("{user_safe} never gives two users one ServiceAccount: sa.victim and sa-victim-fc32e39e "
          "(one name in the old hash scheme) map apart; unchanged names keep theirs")
def test_user_safe_names_are_distinct_and_valid(cluster, workdir, users):
    tag = secrets.token_hex(2)
    want = {
        # the review's pair: the old scheme gave both u-sa-victim-fc32e39e
        "sa.victim": "u-sa--046victim",
        "sa-victim-fc32e39e": "u-sa-victim-fc32e39e",
        f"first_last{tag}": f"u-first--095last{tag}",
        f"First.Last{tag}": f"u---first--046--last{tag}",
        f"plain-{tag}": f"u-plain-{tag}",
        # 32 characters that all change: 66 in all, longer than a DNS label, as
        # a ServiceAccount name may be (253)
        "Ab" * 16: "u-" + "--ab" * 16,
    }
    cfg = workdir.write_config(VIEW_RULE)
    for user, sa in want.items():
        _badname_user(users, user)
        p = helper("explain", "--config", cfg, user)
        assert f"-> ServiceAccount bastion-users/{sa}," in p.stdout, p.stdout + p.stderr
    for user, sa in want.items():
        p, s = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        who = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o",
                         "jsonpath={.status.userInfo.username}")
        assert who.stdout == f"system:serviceaccount:bastion-users:{sa}", who.stderr
        close_session(user, cfg, s)
    assert len(set(want.values())) == len(want)


def test_user_safe_refuses_a_name_that_does_not_fit(cluster, workdir, users):
    """A namespace made from {user_safe} holds 63 characters: a longer result is
    refused at login, naming the rule, the length and the limit."""
    user = _badname_user(users, "Z" * 21)  # 63 characters escaped, 66 with "ns-"
    cfg = workdir.write_config('  - user: "*"\n    cluster: test\n    serviceaccount: "ns-{user_safe}/u"\n')
    p = helper("explain", "--config", cfg, user)
    assert p.returncode == 1
    assert (f"{cfg}:10:21: for user '{user}' the namespace 'ns-{{user_safe}}' would be 66 characters long; "
            "a namespace holds at most 63") in p.stdout
    p, _ = open_session(user, cfg)
    assert p.returncode != 0 and "would be 66 characters long" in p.stderr
    assert "MESSAGE=cluster test: your user name does not map to a valid ServiceAccount name" in p.stdout


def test_two_clusters_give_two_contexts(cluster, workdir, users):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    cfg = workdir.write_config(
        f"""  - user: {user}
    cluster: one
    serviceaccount: team-a/alice
  - user: "*"
    cluster: two
    serviceaccount: bastion-users/u-{{user_safe}}
    create: true
    clusterrole: view
""", clusters=[workdir.cluster_entry("one"), workdir.cluster_entry("two")])
    p, s = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    kc = kubeconfig_of(users, user)
    assert assert_parses(kc) == "one"
    ctx = run(["kubectl", "config", "get-contexts", "-o", "name", "--kubeconfig", kc]).stdout.split()
    assert sorted(ctx) == ["one", "two"]
    who = kubectl_as(user, kc, "--context", "two", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == f"system:serviceaccount:bastion-users:u-{user}"
    close_session(user, cfg, s)


def test_one_cluster_down_still_gives_the_other(cluster, workdir, users):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    with __import__("socket").socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    cfg = workdir.write_config(
        f"""  - user: {user}
    cluster: up
    serviceaccount: team-a/alice
  - user: {user}
    cluster: down
    serviceaccount: team-a/alice
""", clusters=[workdir.cluster_entry("up"), workdir.cluster_entry("down", server=f"https://127.0.0.1:{dead}")])
    start = time.monotonic()
    p, s = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - start < 8
    assert re.search(r"^MESSAGE=cluster down is unavailable", p.stdout, re.M)
    assert "cluster down: cannot reach" in p.stderr
    kc = kubeconfig_of(users, user)
    # Both contexts stay in the file (the same on every bastion); only "up" has a token.
    ctx = run(["kubectl", "config", "get-contexts", "-o", "name", "--kubeconfig", kc]).stdout.split()
    assert sorted(ctx) == ["down", "up"]
    assert token_path(users, user, "up").exists() and not token_path(users, user, "down").exists()
    who = kubectl_as(user, kc, "--context", "up", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == "system:serviceaccount:team-a:alice"
    close_session(user, cfg, s)


def test_shortened_lifetime_is_told(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user, extra="token:\n  ttl: 100h\n")
    p, s = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^MESSAGE=.*limits tokens to 24h \(not 100h\)", p.stdout, re.M), p.stdout
    assert "shortened the token lifetime to 24h (asked 100h)" in p.stderr
    close_session(user, cfg, s)


@security("a failed write keeps the previous file and leaves no temp file")
def test_failed_write_keeps_the_previous_file(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user)
    p, s = open_session(user, cfg)
    assert p.returncode == 0
    kc = kubeconfig_of(users, user)
    before = kc.read_bytes()
    os.chmod(kc.parent, 0o777)  # now refused: group/world-writable
    p2, s2 = open_session(user, cfg)
    # The token file is written all the same; the previous file (naming it) stays.
    assert p2.returncode == 0, p2.stderr
    assert "writable by group or others" in p2.stderr and "was left as it was" in p2.stdout
    assert kc.read_bytes() == before
    assert sorted(os.listdir(kc.parent)) == ["config-eks"]  # no temp file
    os.chmod(kc.parent, 0o700)
    close_session(user, cfg, s)
    close_session(user, cfg, s2)


def _snapshot_proc(stop, seen):
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            for part in ("cmdline", "environ"):
                try:
                    seen.add(Path(f"/proc/{pid}/{part}").read_bytes())
                except OSError:
                    pass
        time.sleep(0.005)


@security("no secret in syslog, stderr, or any process's argv or environment during a login")
def test_no_secret_in_logs_argv_or_environment(cluster, workdir, users, syslog):
    user = users.make()
    cfg = workdir.alice_config(user)
    syslog.clear()
    seen, stop = set(), threading.Event()
    watcher = threading.Thread(target=_snapshot_proc, args=(stop, seen))
    watcher.start()
    try:
        p, s = open_session(user, cfg)
    finally:
        stop.set()
        watcher.join()
    assert p.returncode == 0, p.stderr
    minted = user_token(users, user)
    helper_token = cluster.minter_token()
    log = syslog.text()
    assert re.search(rf"login user={user} uid={users.uid(user)} session={s} rhost=198\.51\.100\.7 service=sshd ",
                     log), log
    assert re.search(rf"mint user={user} uid={users.uid(user)} cluster=test serviceaccount=team-a/alice "
                     r"jti=[0-9a-f-]{36} expires=\S+Z lifetime=15m reason=login "
                     rf"sessions={s} rhosts=198\.51\.100\.7 time=\S+Z", log), log
    assert any(b"open" in x and user.encode() in x for x in seen)  # the watcher did see the helper run
    for secret in (minted, helper_token):
        assert secret not in log
        assert secret not in p.stderr and secret not in p.stdout
        assert not any(secret.encode() in x for x in seen)
    close_session(user, cfg, s)


def test_check_explain_and_online(cluster, workdir, users):
    cfg = workdir.write_config(VIEW_RULE)
    p = helper("check", "--config", cfg)
    assert p.returncode == 0 and "OK (1 cluster, 1 mapping rule)" in p.stdout
    user = users.make()
    p = helper("explain", "--config", cfg, user)
    assert p.returncode == 0
    assert f"cluster test: rule 1 at {cfg}:" in p.stdout
    assert f"-> ServiceAccount bastion-users/u-{user}, created if missing, bound to ClusterRole view" in p.stdout
    p = helper("check", "--online", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "holds every permission it needs" in p.stdout
    # A permission the config needs but the cluster does not grant is named.
    cfg = workdir.write_config(VIEW_RULE.replace("clusterrole: view", "clusterrole: admin"))
    p = helper("check", "--online", "--config", cfg)
    assert p.returncode == 1
    assert "missing: bind clusterroles admin in namespace bastion-users" in p.stderr


def test_a_failed_cluster_is_skipped_for_after_failure(cluster, workdir, users, proxy):
    """An outage costs the first login its timeout; the next ones skip the cluster
    in milliseconds until network.after_failure has passed; then one probes."""
    user = users.make()
    cfg = workdir.alice_config(user, server=proxy.server,
                               extra="network:\n  request_timeout: 2s\n  after_failure: 3s\n")
    proxy.set("blackhole")
    start = time.monotonic()
    p, _ = open_session(user, cfg)
    first = time.monotonic() - start
    assert p.returncode == 1 and "no answer from" in p.stderr
    start = time.monotonic()
    p, _ = open_session(user, cfg)
    skipped = time.monotonic() - start
    assert p.returncode == 1 and "skipped: it failed less than 3s ago (network.after_failure)" in p.stderr
    assert "MESSAGE=cluster test is unavailable (it failed moments ago)" in p.stdout
    print(f"\nfirst login during the outage {first:.2f}s, the next {skipped * 1000:.0f} ms")
    assert first >= 1.9 and skipped < 0.5
    time.sleep(3.2)
    proxy.set("forward")  # back: the probe after the window gets through, and clears the mark
    p, _ = open_session(user, cfg)
    assert p.returncode == 0, p.stderr
    p, _ = open_session(user, cfg)
    assert p.returncode == 0


def test_a_refresh_out_of_time_marks_no_cluster_down(cluster, workdir, users, proxy):
    """A refresh run that reaches its own deadline while a user's rotation waits
    on the API server has learnt nothing about the cluster: the next logins must
    not skip it for network.after_failure. (A 10,000-user refresh that ran out of
    time cut its last users' requests short and marked both clusters down: every
    login for the next 30 s got no token.)"""
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    first, second = users.make(), users.make()
    cfg = workdir.write_config(
        "".join(f"  - user: {u}\n    cluster: test\n    serviceaccount: team-a/alice\n" for u in (first, second)),
        clusters=[workdir.cluster_entry("test", server=proxy.server)],
        extra="token:\n  ttl: 10m\n  refresh_before: 99%\n")
    p, s = open_session(first, cfg)
    assert p.returncode == 0, p.stderr
    time.sleep(6.5)  # 1 % of its 10 minutes: the token is due
    proxy.set("blackhole")  # the rotation's TokenRequest gets no answer
    start = time.monotonic()
    r = helper("refresh", "--config", cfg, "--deadline", "1500")
    took = time.monotonic() - start
    assert took < 5, f"refresh took {took:.1f} s past its 1.5 s deadline: {r.stderr}"
    proxy.set("forward")
    p, s2 = open_session(second, cfg)
    assert "skipped" not in p.stderr, f"the refresh's own deadline marked the cluster down:\n{r.stderr}\n{p.stderr}"
    assert p.returncode == 0, p.stderr
    assert token_path(users, second).exists()
    close_session(second, cfg, s2)
    close_session(first, cfg, s)


@security("TLS verification is switched off only by the named escape hatch, and every login through it says so")
def test_an_insecure_cluster_is_told_at_every_login(cluster, workdir, users):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    entry = (f"  - name: test\n    server: {cluster.server}\n    insecure_skip_tls_verify: true\n"
             f"    auth:\n      token_file: {workdir.token}\n")
    cfg = workdir.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: team-a/alice\n",
                               clusters=[entry])
    assert helper("check", "--config", cfg).returncode == 2  # refused without --allow-insecure
    for n in range(2):
        p, s = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        assert re.search(r"^MESSAGE=cluster test: TLS verification is switched off for it "
                         r"\(insecure_skip_tls_verify\)", p.stdout, re.M), p.stdout
        assert "insecure-skip-tls-verify: true" in kubeconfig_of(users, user).read_text()
        close_session(user, cfg, s)
