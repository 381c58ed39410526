"""Lifecycle tier, round two (issue 23): the nine ways access outlived the
session, each a named test against the real test cluster. Every verdict is the
API server's: a token refused (SelfSubjectReview, past its ~10 s cache), our
Secrets (admin kubectl), the audit log (which names each request's token by
its jti), and watches opened before a revocation that must deliver nothing
created after it (the test cluster has no kubelet: streams are watches)."""
import concurrent.futures
import json
import os
import pwd
import secrets
import signal
import time
from pathlib import Path

import pytest

import fakeclock
from clients import CREDENTIAL_ID, jwt_claims, wait_for
from conftest import (BUILD, HELPER, STATE_DIR, Background, Driver, Stopper, current_token, helper, our_secrets, run,
                      run_bounded, second_cuts, security, token_path, unique_host_id, user_runnable)
from faultproxy import Rule

NS = "team-a"
ALICE = "system:serviceaccount:team-a:alice"
NET = "network:\n  connect_timeout: 2s\n  request_timeout: 2s\n"
WATCHERS = user_runnable(Path(__file__).resolve().parent / "watchers.py")
# The API server's leeway on exp, then its authentication cache (lifecycle/plan.h).
LEEWAY = 70


@pytest.fixture
def host():
    return unique_host_id()


@pytest.fixture
def alice(cluster):
    cluster.ensure_sa(NS, "alice", clusterrole="view")


def cfg_for(workdir, host, user, server=None, extra=""):
    return workdir.alice_config(user, server=server, extra=f"host_id: {host}\n" + NET + extra)


def make_configmap(cluster, ns=NS):
    name = f"kct-{secrets.token_hex(4)}"
    cluster.kubectl("-n", ns, "create", "configmap", name, "--from-literal=k=v")
    return name


def requests_after(cluster, mark, jti, after):
    """The audit log's requests authenticated by the token jti received after `after` (epoch s)."""
    import datetime
    out = []
    for ev in cluster.audit_events(mark):
        cred = (ev.get("user", {}).get("extra", {}) or {}).get(CREDENTIAL_ID, [""])[0]
        if cred != f"JTI={jti}" or ev.get("stage") != "ResponseComplete":
            continue
        at = datetime.datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        code = ev.get("responseStatus", {}).get("code")
        if at > after and code and code < 400:
            out.append((ev["requestReceivedTimestamp"], ev.get("verb"), ev.get("requestURI"), code))
    return out


class Watchers(Background):
    """tests/lifecycle/watchers.py as the user, reading the token from a copy
    only the user can read (the client keeps the token it held)."""

    def __init__(self, workdir, users, user, token, count=1, reconnect=0, source=None, server=None):
        home = users.home(user)
        self.token_copy = home / f".kct-token-{secrets.token_hex(3)}"
        self.token_copy.write_text(token)
        pw = pwd.getpwnam(user)
        os.chown(self.token_copy, pw.pw_uid, pw.pw_gid)
        os.chmod(self.token_copy, 0o400)
        argv = ["python3", str(WATCHERS), "--server", server or workdir.cluster.server, "--ca", str(workdir.ca),
                "--token-file", str(self.token_copy), "--namespace", NS, "--count", str(count),
                "--reconnect", str(reconnect)]
        if source:
            argv += ["--source", source]
        super().__init__(argv, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/", start_new_session=True)

    def ready(self):
        counts = [int(l.split()[1]) for l in self.lines if l.startswith("ready ")]
        return counts[-1] if counts else 0

    def ended(self):
        counts = [int(l.split()[1]) for l in self.lines if l.startswith("ended ")]
        return counts[-1] if counts else 0

    def saw(self, name):
        return any(l == f"event {name}" for l in self.lines)


def assert_no_stream_outlives(cluster, watchers, since, what):
    """A ConfigMap made well after the revocation reaches none of the watches."""
    time.sleep(max(0.0, since + 30 - time.time()))
    name = make_configmap(cluster)
    time.sleep(5)
    for w in watchers:
        assert not w.saw(name), f"{what}: a watch opened before the revocation still delivers events:\n{w.text()[-2000:]}"


def assert_server_refuses_after(cluster, mark, token, revoked_at, what):
    jti = jwt_claims(token)["jti"]
    late = requests_after(cluster, mark, jti, revoked_at + 11)
    assert not late, f"{what}: the API server served the revoked token after its cache time: {late[:5]}"


# ---- 1: a cut no user can outnumber ---------------------------------------------------------------


class Flood:
    """Another user's sockets to the API server's address, more than 65,536,
    that never complete: their SYNs are dropped (an nftables table of the
    test's), so they sit in SYN_SENT, from several processes and source
    addresses (a process may hold at most 20,000 files here)."""

    SCRIPT = r"""
import socket, sys, time
host, port, src, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
held = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    s.bind((src, 0))
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    held.append(s)
print("held", len(held), flush=True)
time.sleep(600)
"""

    def __init__(self, users, host, port, total=68000, procs=4):
        self.user = users.make(prefix="kcf")
        pw = pwd.getpwnam(self.user)
        self.table = f"kctest{secrets.token_hex(3)}"
        run(["nft", "add", "table", "inet", self.table])
        run(["nft", "add", "chain", "inet", self.table, "out", "{ type filter hook output priority -10; }"])
        run(["nft", "add", "rule", "inet", self.table, "out", "meta", "skuid", str(pw.pw_uid), "tcp", "dport",
             str(port), "drop"])
        self.procs = [Background(["python3", "-c", self.SCRIPT, host, str(port), f"127.0.0.{2 + i}",
                                  str(total // procs)], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                                 start_new_session=True) for i in range(procs)]
        for p in self.procs:
            assert p.first_line(120).startswith("held"), p.text()

    def close(self):
        for p in self.procs:
            p.stop()
        run(["nft", "delete", "table", "inet", self.table], check=False)


@security("a user holding 5,000 watches, beside another user's 68,000 sockets to the same address, "
          "loses every one at the last logout: the cut has no cap")
def test_escape1_the_cut_cannot_be_outnumbered(cluster, workdir, users, pam_service, alice, host):
    api_host, api_port = cluster.server.removeprefix("https://").rsplit(":", 1)
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    flood = Flood(users, api_host, int(api_port))
    watchers = []
    try:
        watchers = [Watchers(workdir, users, user, token, count=1000) for _ in range(5)]
        for w in watchers:
            assert wait_for(lambda w=w: w.ready() == 1000, 180), w.text()[-2000:]
        mark = cluster.audit_mark()
        start = time.time()
        assert d.close() == ["close 0 Success"]
        assert wait_for(lambda: sum(w.ended() for w in watchers) == 5000, 20), (
            f"after the last logout {sum(w.ended() for w in watchers)} of 5000 watches ended")
        print(f"\n5000 watches cut {time.time() - start:.2f}s after the logout began, "
              f"beside another user's {sum(1 for p in flood.procs)} processes of SYN_SENT sockets")
        cluster.wait_refused(token)
        assert_server_refuses_after(cluster, mark, token, start, "escape 1")
        assert_no_stream_outlives(cluster, watchers, start, "escape 1")
    finally:
        for w in watchers:
            w.stop()
        flood.close()


# ---- 2: a session that ends without close -----------------------------------------------------


LIVE = STATE_DIR / "live"  # lifecycle/live.h
LIVE_ASIDE = STATE_DIR / "live.aside-test"


@pytest.mark.parametrize("index", ["readable", "unreadable"])
@security("a session whose process is killed (no logout): the next refresh revokes, whatever its verdicts say, "
          "and when the index of open sessions cannot be read no verdict holds")
def test_escape2_a_dead_session_is_revoked_by_the_next_refresh(cluster, workdir, users, pam_service, alice, host,
                                                               index):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    # Two refreshes with nothing due: the second holds the user by its verdict.
    time.sleep(2)
    for _ in range(2):
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert r.returncode == 0 and not r.killed, r
    w = Watchers(workdir, users, user, token)
    try:
        assert wait_for(lambda: w.ready() == 1, 30), w.text()
        d.p.send_signal(signal.SIGKILL)  # sshd's session process dies: no close
        d.p.wait()
        if index == "unreadable":  # a symlink where the index was: kc_live_read() refuses it
            LIVE.rename(LIVE_ASIDE)
            LIVE.symlink_to(LIVE_ASIDE)
        mark, start = cluster.audit_mark(), time.time()
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert not r.killed, r
        if index == "unreadable":
            assert "cannot read /var/lib/pam_kubeconfig/live" in r.stderr, r
        assert not our_secrets(cluster, host, user), "one refresh after the session died, its Secret remains"
        assert not token_path(users, user).exists()
        cluster.wait_refused(token, limit=15)
        assert wait_for(lambda: w.ended() == 1, 15), f"the dead session's watch was not cut:\n{w.text()}"
        assert_server_refuses_after(cluster, mark, token, start, "escape 2")
        assert_no_stream_outlives(cluster, [w], start, "escape 2")
    finally:
        w.stop()
        if LIVE.is_symlink():
            LIVE.unlink()
            LIVE_ASIDE.rename(LIVE)


# ---- 3: a logout while the user database fails ---------------------------------------------------


def failing_lookups_helper(installed):
    """A helper that, at close, finds the user database failing (EIO from
    getpwnam_r and getpwuid_r: LDAP or sssd down), as tests/hardening's shim makes it."""
    wrapper = installed / f"helper-nss-down-{secrets.token_hex(3)}"
    wrapper.write_text("#!/bin/sh\n"
                       "case \"$1\" in close) exec env LD_PRELOAD=" + str(BUILD / "tests" / "failsyscall.so") +
                       " KC_FAIL=getpwnam_r " + str(installed / "pam-kubeconfig") + " \"$@\";; esac\n"
                       "exec " + str(installed / "pam-kubeconfig") + " \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return wrapper


@pytest.mark.parametrize("how", ["deleted", "directory-down"])
@security("a last logout while the account cannot be looked up (deleted, or the directory down) revokes "
          "from the records on disk")
def test_escape3_a_logout_while_the_directory_fails_revokes(cluster, workdir, users, pam_service, installed,
                                                            alice, host, how):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    args = f"config={cfg} timeout=10"
    wrapper = None
    if how == "directory-down":
        wrapper = failing_lookups_helper(installed)
        args += f" helper={wrapper}"
    d = Driver(pam_service(args), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    token_file = token_path(users, user)
    w = Watchers(workdir, users, user, token)
    try:
        assert wait_for(lambda: w.ready() == 1, 30), w.text()
        if how == "deleted":
            run(["userdel", "-f", user])
        mark, start = cluster.audit_mark(), time.time()
        closed = d.close()
        print(f"\n{how}: {closed}")
        assert closed == ["close 0 Success"], closed
        assert not our_secrets(cluster, host, user), f"{how}: the last logout left its Secret"
        assert not token_file.exists(), f"{how}: the last logout left the token file"
        cluster.wait_refused(token, limit=15)
        assert wait_for(lambda: w.ended() == 1, 15), f"{how}: the watch was not cut:\n{w.text()}"
        assert_server_refuses_after(cluster, mark, token, start, f"escape 3 ({how})")
    finally:
        w.stop()
        if wrapper:
            wrapper.unlink(missing_ok=True)


# ---- 4: a revocation that cannot succeed ends ------------------------------------------------


def fresh_namespace(cluster, workdir, user, host):
    """A namespace of the test's own, its ServiceAccount, and the helper's RBAC
    there as `pam-kubeconfig rbac` prints it."""
    ns = f"kct-{secrets.token_hex(3)}"
    cluster.ensure_sa(ns, "alice", clusterrole="view")
    cfg = workdir.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: {ns}/alice\n",
                               extra=f"host_id: {host}\n" + NET)
    manifest = helper("rbac", "--config", cfg, check=True).stdout
    cluster.kubectl("apply", "-f", "-", input=manifest)
    return ns, cfg


def gc_at(when, cfg):
    """gc as if the clock said `when` (libfaketime; the API server keeps its own clock).
    The helper clears its environment before it first asks the time, so the
    offset is in libfaketime's system-wide file, read only by a process that
    preloads it: this one."""
    rc = Path("/etc/faketimerc")
    rc.write_text(f"{int(when - time.time()):+d}\n")
    try:
        return run([HELPER, "gc", "--config", cfg], env={**os.environ, "LD_PRELOAD": str(fakeclock.LIB)}, check=False)
    finally:
        rc.unlink()


def grant_file(uid, ns, cluster="test"):
    return STATE_DIR / str(uid) / f"grant-{cluster}@{ns}.json"


@security("a revocation the API server refuses (403) ends when every token bound to its Secret has expired, "
          "and never decides the next owner of the uid's logouts")
def test_escape4_a_refused_revocation_ends_and_spares_the_next_owner(cluster, workdir, users, pam_service, host):
    user = users.make()
    uid = users.uid(user)
    ns, cfg = fresh_namespace(cluster, workdir, user, host)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    exp = jwt_claims(token)["exp"]
    # The helper's RoleBinding goes (as with its namespace): every DELETE is 403 from now on.
    cluster.kubectl("-n", ns, "delete", "rolebinding", "pam-kubeconfig-minter")
    closed = d.close()
    grant = json.loads(grant_file(uid, ns).read_text())
    print(f"\nclose: {closed}; grant: state={grant['state']} bound_until={grant['bound_until']} token exp={exp}")
    assert grant["state"] == "revoke" and "403" in grant["error"], grant
    assert abs(grant["bound_until"] - exp) <= 5, "the pending revocation does not know when its token expires"
    # The uid goes to a new account while the revocation is pending: its logins and logouts are clean.
    run(["userdel", "-r", "-f", user])
    newcomer = users.make(prefix="kcn")
    run(["usermod", "-u", str(uid), newcomer])
    ns2, cfg2 = fresh_namespace(cluster, workdir, newcomer, host)
    svc2 = pam_service(f"config={cfg2} timeout=10")
    d2 = Driver(svc2, newcomer)
    assert d2.open_rc == 0, d2.lines
    assert d2.close() == ["close 0 Success"], "the uid's former owner's pending revocation failed the new owner's logout"
    assert grant_file(uid, ns).exists(), "the former owner's pending revocation was forgotten before it ended"
    # Before its last token's exp plus leeway gc keeps trying; after it, the revocation ends, said once.
    early = gc_at(exp + LEEWAY - 30, cfg2)
    assert grant_file(uid, ns).exists(), f"gc ended the revocation before the token expired: {early.stderr}"
    late = gc_at(exp + LEEWAY + 30, cfg2)
    print(f"gc past exp + leeway: rc={late.returncode}\n{late.stderr}")
    assert not grant_file(uid, ns).exists(), f"the revocation did not end after its tokens expired: {late.stderr}"
    assert late.stderr.count("ended: every token bound to it expired") == 1, late.stderr
    again = gc_at(exp + LEEWAY + 40, cfg2)
    assert "ended" not in again.stderr, "the ended revocation was reported again"
    check = helper("check", "--config", cfg2)
    assert "revocations ended because every token bound to their Secret had expired" in check.stdout + check.stderr, (
        check.stdout + check.stderr)


# ---- 5: a logout in a cluster's down window ---------------------------------------------------


@security("a logout within after_failure of a cluster's failure still tries the DELETE, removes the token file "
          "and cuts")
def test_escape5_a_logout_in_the_down_window_skips_nothing(cluster, workdir, users, pam_service, fault_proxy,
                                                           alice, host):
    proxy = fault_proxy()
    user = users.make()
    cfg = cfg_for(workdir, host, user, server=proxy.url)
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    # A rotation fails: the cluster is marked down for network.after_failure (30 s).
    proxy.add(Rule("status", method="POST", path=r"/token$", status=500))
    r = run_bounded(["refresh", "--config", cfg], 10000, now_user=user)
    assert not r.killed, r
    proxy.clear()
    closed = d.close()
    deletes = proxy.requests("DELETE", "/secrets/")
    print(f"\nclose in the down window: {closed}; DELETEs: {len(deletes)}")
    assert deletes, "the logout in the down window sent no DELETE"
    assert not token_path(users, user).exists(), "the logout in the down window left the token file"
    assert not our_secrets(cluster, host, user)
    cluster.wait_refused(token, limit=15)


# ---- 6: refresh is fair -----------------------------------------------------------------------


TAMPER = r"""
import os, sys, time
path = sys.argv[1]
while True:  # the file is the user's: they may make it writable and empty it, again and again
    try:
        os.chmod(path, 0o600)
        open(path, "w").close()
    except OSError:
        pass
    time.sleep(0.1)
"""


@security("users who break their own token files again and again, and stop their writers, cannot make refresh "
          "work for them or starve another user's turn")
def test_escape6_refresh_is_fair(cluster, workdir, users, pam_service, alice, host, syslog):
    cluster.ensure_sa("bastion-users", "kct-victim", clusterrole="view")
    tamperers = [users.make(prefix="kcx") for _ in range(6)]
    victim = users.make(prefix="kcv")  # the last uid: last in line when refresh goes by uid alone
    rules = "".join(f"  - user: {u}\n    cluster: test\n    serviceaccount: team-a/alice\n" for u in tamperers)
    rules += f"  - user: {victim}\n    cluster: test\n    serviceaccount: bastion-users/kct-victim\n"
    cfg = workdir.write_config(rules, extra=f"host_id: {host}\n" + NET)
    svc = pam_service(f"config={cfg} timeout=10")
    for u in tamperers:
        # kubectl's lock on their file: no login or refresh ever writes it, so every
        # visit of theirs would need the writer, which they stop.
        run(["runuser", "-u", u, "--", "sh", "-c", "mkdir -p ~/.kube && : > ~/.kube/config-eks.lock"])
    drivers = [Driver(svc, u) for u in tamperers + [victim]]
    stoppers, loops = [], []
    try:
        assert all(d.open_rc == 0 for d in drivers), [d.lines for d in drivers]
        for u in tamperers:
            pw = pwd.getpwnam(u)
            # "kc-stopper" in its argv: the user's stopper spares it, as it would its own tools.
            loops.append(Background(["python3", "-c", TAMPER, str(token_path(users, u)), "kc-stopper-tamper"],
                                    user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], start_new_session=True))
            stoppers.append(Stopper(u, period=0.05))
        token_path(users, victim).unlink()  # the victim needs a new token from a refresh
        syslog.clear()
        for _ in range(3):
            r = run_bounded(["refresh", "--config", cfg], 4000, hard_s=10)
            assert not r.killed and r.took < 4 + 1, f"refresh overran its deadline: {r!r}"
        log = syslog.text()
        mints = {u: log.count(f"mint user={u} ") for u in tamperers}
        restored = current_token(users, victim, missing_ok=True)
        print(f"\nthe victim served: {bool(restored)}; mints per tamperer in 3 runs: {list(mints.values())}")
        assert restored and cluster.whoami(restored) == "system:serviceaccount:bastion-users:kct-victim", (
            "three refreshes beside users who tamper and stop their writers never served the victim")
        for u, n in mints.items():
            assert n <= 1, f"{u} got {n} new tokens in three refreshes by breaking its file"
    finally:
        for p in loops:
            p.stop()
        for s in stoppers:
            s.stop()
        for d in drivers:
            if d.p.poll() is None:
                d.close()


# ---- 7: a cluster whose server changes -----------------------------------------------------------


@pytest.mark.parametrize("what", ["server", "ca"])
@security("a cluster whose server or CA changes under the same name is a new target: the old token is revoked "
          "and the next login mints from the new server")
def test_escape7_a_changed_cluster_is_a_new_target(cluster, workdir, users, pam_service, proxy, alice, host, what):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    svc = pam_service(f"config={cfg} timeout=10")
    d1 = Driver(svc, user)
    assert d1.open_rc == 0, d1.lines
    old = current_token(users, user)
    if what == "server":
        cfg = cfg_for(workdir, host, user, server=proxy.server)
    else:
        # The same CA with another certificate after it: another CA bundle for the cluster.
        other = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "/dev/null", "-subj", "/CN=kct-other", "-days", "1"]).stdout
        workdir.ca.write_text(Path(cluster.ca_file).read_text() + other)
    d2 = Driver(svc, user)
    try:
        assert d2.open_rc == 0, d2.lines
        new = current_token(users, user)
        assert new != old, f"the {what} changed and the next login kept the token the old one minted"
        cluster.wait_refused(old, limit=20)
        assert cluster.whoami(new) == ALICE
    finally:
        d2.close()
        d1.close()


# ---- 8: reconnects in the cache window -------------------------------------------------------------


@pytest.mark.parametrize("how", ["logout", "userdel", "relogin"])
@security("a client reconnecting every 10 ms with the token it held at the last logout has no watch past it "
          "(also for an account deleted with userdel -f, and across a re-login 3 s later)")
def test_escape8_a_reconnecting_client_gets_no_stream_past_the_logout(cluster, workdir, users, pam_service, alice,
                                                                      host, how):
    user = users.make()
    cfg = cfg_for(workdir, host, user)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    w = Watchers(workdir, users, user, token, count=3, reconnect=10)
    again = None
    try:
        assert wait_for(lambda: w.ready() == 3, 30), w.text()
        mark, start = cluster.audit_mark(), time.time()
        assert d.close() == ["close 0 Success"]
        if how == "userdel":
            run(["userdel", "-f", user])
        elif how == "relogin":
            time.sleep(3)
            again = Driver(svc, user)
            assert again.open_rc == 0, again.lines
            assert current_token(users, user) != token
        cluster.wait_refused(token, limit=20)
        assert_no_stream_outlives(cluster, [w], start, f"escape 8 ({how})")
        assert_server_refuses_after(cluster, mark, token, start, f"escape 8 ({how})")
        print(f"\n{how}: {w.count('refused')} attempts refused by the API server, {w.count('failed')} could not "
              f"connect, {w.count('ready')} streams opened")
    finally:
        w.stop()
        if again:
            again.close()


# ---- 9: another front door -------------------------------------------------------------------------


@security("a watch through another front door of the API server (also_reachable_at) is cut at the last logout")
def test_escape9_another_front_door_is_cut(cluster, workdir, users, pam_service, proxy, alice, host):
    user = users.make()
    door = proxy.server.removeprefix("https://")
    cfg = cfg_for(workdir, host, user)
    text = Path(cfg).read_text().replace("    auth:\n", f"    also_reachable_at: [\"{door}\"]\n    auth:\n", 1)
    Path(cfg).write_text(text)
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    w = Watchers(workdir, users, user, token, server=proxy.server)
    try:
        assert wait_for(lambda: w.ready() == 1, 30), w.text()
        start = time.time()
        assert d.close() == ["close 0 Success"]
        assert wait_for(lambda: w.ended() == 1, 15), f"the watch through {door} was not cut:\n{w.text()}"
        assert_no_stream_outlives(cluster, [w], start, "escape 9")
    finally:
        w.stop()


@security("a session of an account whose uid went to a new account meanwhile logs out cleanly; what it left "
          "is revoked by the new owner's first login")
def test_escape4_a_former_owners_logout_is_clean(cluster, workdir, users, pam_service, alice, host):
    user = users.make()
    uid = users.uid(user)
    cfg = cfg_for(workdir, host, user)
    d = Driver(pam_service(f"config={cfg} timeout=10"), user)
    assert d.open_rc == 0, d.lines
    token = current_token(users, user)
    run(["userdel", "-f", user])  # its session goes on, as an admin's userdel -f leaves it
    newcomer = users.make(prefix="kcn")
    run(["usermod", "-u", str(uid), newcomer])
    cfg2 = cfg_for(workdir, host, newcomer)
    d2 = Driver(pam_service(f"config={cfg2} timeout=10"), newcomer)
    try:
        assert d2.open_rc == 0, d2.lines
        assert not our_secrets(cluster, host, user), "the former owner's Secret outlived the new owner's login"
        cluster.wait_refused(token, limit=15)
        assert d.close() == ["close 0 Success"], "the former owner's logout failed"
        assert cluster.whoami(current_token(users, newcomer)) == ALICE, "the former owner's logout hit the new one"
    finally:
        d2.close()


# ---- a logout killed between its DELETE and its record --------------------------------------------


def helper_descendants(pid):
    """The pids of helper processes (installed or built) below pid."""
    kids = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(p.name))
    found, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            todo.append(k)
            try:
                if os.path.basename(os.readlink(f"/proc/{k}/exe")) == HELPER.name:
                    found.append(k)
            except OSError:
                pass
    return found


@security("a logout whose helper is killed after its DELETE reached the API server but before it recorded that "
          "leaves nothing the next login keeps: that login mints a token the API server accepts")
def test_a_logout_killed_after_its_delete_is_not_kept(cluster, workdir, users, pam_service, fault_proxy, alice,
                                                      host):
    proxy = fault_proxy()
    user = users.make()
    cfg = cfg_for(workdir, host, user, server=proxy.url)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    held = Rule("hold", method="DELETE", path="/secrets/", times=1)
    proxy.add(held)
    d.p.stdin.write("close\n")
    d.p.stdin.flush()
    assert held.hit.wait(20), "the logout sent no DELETE"
    killed = helper_descendants(d.p.pid)
    assert killed, "no helper below the session to kill"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    held.release()  # the DELETE lands after its sender died
    assert held.done.wait(20)
    d.p.communicate(timeout=60)
    assert not our_secrets(cluster, host, user), "the DELETE did not land"
    d2 = Driver(svc, user)
    try:
        assert d2.open_rc == 0, d2.lines
        token = current_token(users, user)
        assert cluster.whoami(token) == ALICE, "the next login kept a token whose Secret the killed logout deleted"
    finally:
        d2.close()


def opening_driver_pid(user, other):
    """The session driver of `user` that is not `other`."""
    drivers = []
    for p in Path("/proc").iterdir():
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if p.name.isdigit() and int(p.name) != other and argv[0].endswith(b"kc-session-driver") and \
                user.encode() in argv:
            drivers.append(int(p.name))
    assert len(drivers) == 1, f"session drivers of {user}: {drivers}"
    return drivers[0]


@security("a login killed after it sent the create of a new Secret (its server changed) leaves a record that "
          "outlives the logout's revocation: the create that lands late is deleted by the next gc")
def test_a_create_landing_after_the_logout_is_revoked(cluster, workdir, users, pam_service, fault_proxy, alice, host):
    proxy = fault_proxy()
    user = users.make()
    cfg = cfg_for(workdir, host, user, server=proxy.url)
    svc = pam_service(f"config={cfg} timeout=10")
    d = Driver(svc, user)
    assert d.open_rc == 0, d.lines
    cfg_for(workdir, host, user, server=proxy.other_url)  # the same path: the next login recreates
    held = Rule("hold", method="POST", path=r"/secrets$", times=1)
    proxy.add(held)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        opening = pool.submit(Driver, svc, user)
        assert held.hit.wait(20), "the second login sent no create"
        killed = helper_descendants(opening_driver_pid(user, d.p.pid))
        assert killed, "no helper of the second login to kill"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        d2 = opening.result(30)
    d2.close()
    d.close()  # the last logout: it deletes the Secret before the create, or finds none
    held.release()  # the create lands now
    assert held.done.wait(20)
    assert wait_for(lambda: our_secrets(cluster, host, user), 10), "the late create did not land"
    r = run_bounded(["gc", "--config", cfg], 10000)
    assert not r.killed, r  # exit 1: the revocation stays pending while another late create may land
    assert not our_secrets(cluster, host, user), "a Secret created after the last logout outlived a gc"


# ---- a run's second cuts -----------------------------------------------------------------------------


@security("a refresh that revokes many users leaves one process for all their second cuts, not one each "
          "(a mass logout must not exhaust the unit's tasks), and that process cuts each in its time")
def test_a_refresh_leaves_one_second_cut_for_all_it_revoked(cluster, workdir, users, pam_service, alice, host):
    names = [users.make() for _ in range(3)]
    uids = [str(users.uid(n)) for n in names]
    mapping = "".join(f"  - user: {n}\n    cluster: test\n    serviceaccount: team-a/alice\n" for n in names)
    cfg = workdir.write_config(mapping, clusters=[workdir.cluster_entry("test")], extra=f"host_id: {host}\n" + NET)
    svc = pam_service(f"config={cfg} timeout=10")
    drivers = [Driver(svc, n) for n in names]
    assert all(d.open_rc == 0 for d in drivers), [d.lines for d in drivers]
    tokens = [current_token(users, n) for n in names]
    watchers = [Watchers(workdir, users, n, t) for n, t in zip(names, tokens)]
    try:
        assert wait_for(lambda: all(w.ready() == 1 for w in watchers), 30), [w.text() for w in watchers]
        for d in drivers:  # sshd's session processes die: no close
            d.p.send_signal(signal.SIGKILL)
            d.p.wait()
        start = time.time()
        r = run_bounded(["refresh", "--config", cfg], 20000)
        assert r.returncode == 0 and not r.killed, r
        for n in names:
            assert not our_secrets(cluster, host, n), f"{n}: the refresh after the session died left its Secret"
        assert all(wait_for(lambda w=w: w.ended() == 1, 15) for w in watchers), [w.text() for w in watchers]
        cuts = second_cuts(uids)
        assert len(cuts) == 1, f"one process for the run's second cuts, not {len(cuts)}: {cuts}"
        assert sorted(cuts[0][2:]) == sorted(uids), cuts
        # It cuts 11 s after each first cut, then ends.
        assert wait_for(lambda: not second_cuts(uids), 25), second_cuts(uids)
        assert time.time() - start >= 10, "the second cut ended before its time"
        for t in tokens:
            cluster.wait_refused(t, limit=15)
    finally:
        for w in watchers:
            w.stop()
