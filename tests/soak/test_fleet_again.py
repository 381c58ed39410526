"""`make soak`, not `make test`: slow tests against the real test cluster.

`revoke USER --fleet` deletes the user's Secrets on every cluster at once and
again FLEET_AGAIN_AFTER_S (301 s) later, from a detached child of its own
(helper/admin/lockcmd.c delete_again_later), for whatever read the locks
before the lock was written and minted on. That second pass deletes only
where the fleet's lock still stands: after `unlock USER --fleet` within those
301 s, a token minted by a new login is the new grant's, and it must still
work (its revocation Secret still there) once the second pass has run."""
import base64
import hashlib
import json
import os
import secrets
import signal
import time
from pathlib import Path

from conftest import HELPER, helper, our_secrets, run, user_token

MINTER = "pam-kubeconfig"  # the helper's Kubernetes user in the test cluster (tests/cluster/up)
AGAIN_AFTER_S = 301  # lockcmd.c FLEET_AGAIN_AFTER_S
REFUSED_WITHIN_S = 15  # the API server's authentication cache (~10 s) and our polling


def lock_name(user):
    """The lock's ConfigMap: helper/lifecycle/fleet.c name_of("lock", user)."""
    return f"pam-kubeconfig-lock-{hashlib.sha256(user.encode()).hexdigest()[:20]}"


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def wait_for(predicate, limit, step=0.2):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def open_session(user, cfg, rhost="198.51.100.7"):
    """A login (as tests/helper/test_rbac.py's): right after a manifest is
    applied a 403 is retried for a few seconds, any other failure returned."""
    deadline = time.monotonic() + 10
    while True:
        session = secrets.token_hex(8)
        p = helper("open", "--user", user, "--session", session, "--config", cfg, "--rhost", rhost,
                   "--service", "sshd", "--pid", str(os.getpid()))
        if p.returncode == 0 or "(403)" not in p.stderr or time.monotonic() > deadline:
            return p, session
        close_session(user, cfg, session)
        time.sleep(0.5)


def close_session(user, cfg, session):
    return helper("close", "--user", user, "--session", session, "--config", cfg, "--pid", str(os.getpid()))


def detached_revokes(user):
    """pids of live `revoke USER --fleet` processes of the helper's for user (the
    detached second pass, once the revoke itself has returned)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == str(HELPER).encode() and b"revoke" in argv and user.encode() in argv:
            if alive(int(p)):
                pids.append(int(p))
    return pids


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def sleep_until(wall):
    time.sleep(max(0.0, wall - time.time()))


def test_unlock_within_301s_spares_the_new_token_from_the_second_pass(cluster, workdir, users, syslog):
    started = time.monotonic()
    tag = secrets.token_hex(3)
    ns, apps = f"kct-again-{tag}", f"kct-again-apps-{tag}"
    host_id = f"kct-again-{tag}"
    policy = f"{MINTER}-minter-{ns}"
    who = f"system:serviceaccount:{apps}:alice"
    user = users.make()
    cluster.ensure_sa(apps, "alice", clusterrole="view")
    cfg = workdir.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: {apps}/alice\n",
                               extra=f"host_id: {host_id}\nfleet:\n  namespace: {ns}\n")
    sessions, child = [], None
    try:
        cluster.kubectl("apply", "-f", "-", input=run([HELPER, "rbac", "--config", cfg]).stdout)
        assert wait_for(lambda: cluster.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, "--as", MINTER,
                                                check=False).stdout.strip() == "yes", 10)

        # 1. A login: its token works.
        p, s1 = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        sessions.append(s1)
        t1 = user_token(users, user)
        assert cluster.whoami(t1) == who

        # 2. revoke --fleet: the lock in the fleet's namespace, the token refused,
        #    and a detached child that deletes again 301 s on.
        r = helper("revoke", user, "--fleet", "--config", cfg)
        revoked_at = time.time()
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"the fleet: {user} is locked on every cluster" in r.stdout, r.stdout + r.stderr
        mark = len(syslog.text().splitlines())
        children = detached_revokes(user)
        assert len(children) == 1, f"revoke --fleet left {len(children)} detached revoke processes: {children}"
        child = children[0]
        assert cluster.kubectl("-n", ns, "get", "configmap", lock_name(user), check=False).returncode == 0
        cluster.wait_refused(t1, limit=REFUSED_WITHIN_S)
        assert our_secrets(cluster, user=user) == []

        # 3. unlock --fleet within the 301 s: the lock goes everywhere.
        close_session(user, cfg, sessions.pop())
        u = helper("unlock", user, "--fleet", "--config", cfg)
        assert u.returncode == 0 and f"{user} is unlocked" in u.stdout, u.stdout + u.stderr
        assert cluster.kubectl("-n", ns, "get", "configmap", lock_name(user), check=False).returncode != 0
        assert time.time() - revoked_at < AGAIN_AFTER_S - 60, "too slow to test anything"

        # 4. A new login mints a new token, which works; its Secret is there.
        p, s2 = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        sessions.append(s2)
        t2 = user_token(users, user)
        assert t2 != t1
        assert cluster.whoami(t2) == who
        secret = claims(t2)["kubernetes.io"]["secret"]["name"]
        assert [x[1] for x in our_secrets(cluster, user=user)] == [secret]
        assert alive(child), "the detached second pass is gone before its time"

        # 5. Past the second pass (301 s after the revoke, and the API server's
        #    cache): it has run and exited, and the new token still works.
        sleep_until(revoked_at + AGAIN_AFTER_S + REFUSED_WITHIN_S)
        assert wait_for(lambda: not alive(child), 30, step=0.5), \
            f"the detached revoke (pid {child}) is still running {time.time() - revoked_at:.0f}s after the revoke"
        after = time.time() - revoked_at
        assert cluster.whoami(t2) == who, \
            f"the token minted after unlock --fleet is refused {after:.0f}s after the revoke"
        got = cluster.kubectl("-n", apps, "get", "secret", secret, "-o", "name", check=False)
        assert got.stdout.strip() == f"secret/{secret}", got.stderr
        assert [x[1] for x in our_secrets(cluster, user=user)] == [secret]
        # The second pass deleted nothing of the new grant's (lockcmd.c delete_one's audit line).
        second = [l for l in syslog.text().splitlines()[mark:] if "revoke fleet " in l and f"secret={secret}" in l]
        assert second == [], second
        print(f"\nrevoke --fleet, unlock --fleet, a new login: its token still works {after:.0f}s after the revoke "
              f"(second pass pid {child} exited); test {time.monotonic() - started:.0f}s")
    finally:
        for pid in detached_revokes(user):  # the test's own revoke's child, on an early failure
            os.kill(pid, signal.SIGKILL)
        for s in sessions:
            close_session(user, cfg, s)
        helper("unlock", user, "--fleet", "--config", cfg)
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy,
                        "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", ns, apps, "--wait=false", check=False)
