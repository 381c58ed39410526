"""Issue 25, the two-bastion show item: with `fleet: { namespace: NS }` on two
bastions (tests/pam/bastions.py: each its own state, cache and network) and a
session of the same user on each, `pam-kubeconfig revoke USER --fleet` on A
ends the user's access on both: the lock is written into the fleet's namespace
before any Secret is deleted, A deletes B's Secret as well as its own, B cuts
its own session's connection at its next refresh (in B's own log), a login on B
while the lock stands mints nothing, and `unlock --fleet` gives access back.
`sessions --fleet` shows the grants on both hosts before and none after, and
a ServiceAccount with `edit` in the fleet's namespace cannot lift the lock
while the ValidatingAdmissionPolicy `rbac` prints stands. The helper's Role
in the fleet's namespace (mapped to no ServiceAccount) mints no token there."""
import datetime
import hashlib
import json
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from bastions import Host, Network
from conftest import HELPER, Background, our_secrets, run
from kubeconfig_checks import user_env

MINTER = "pam-kubeconfig"  # the helper's Kubernetes user in the test cluster (tests/cluster/up)
LOCKED = "cluster test: your access is locked by an administrator"
POLICY_MESSAGE = "only pam-kubeconfig writes the fleet's ConfigMaps"
REFUSED_WITHIN_S = 15


def lock_name(user):
    """The lock's ConfigMap: helper/lifecycle/fleet.c name_of("lock", user)."""
    return f"pam-kubeconfig-lock-{hashlib.sha256(user.encode()).hexdigest()[:20]}"


def utc(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def wait_for(predicate, limit, step=0.2):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class HostLog:
    """A host's own syslog: a datagram socket of the test's, bind-mounted over
    /dev/log in the host's mount namespace only, so that what the helper (and
    the module) running there says is that host's log and no other's. The
    session's Syslog listener provides the /dev/log to mount over."""

    def __init__(self, host):
        self.path = host.root / "log.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o666)
        self.sock.settimeout(0.2)
        self.lines, self.lock, self.stop = [], threading.Lock(), False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        run([*host.ns, "mount", "--bind", self.path, "/dev/log"])

    def _loop(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace"))

    def text(self):
        time.sleep(0.2)
        with self.lock:
            return "\n".join(self.lines)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def watch_events(bg):
    """The objects `kubectl get -w --output-watch-events -o json` printed so far
    (anything else it said is skipped)."""
    text, dec, i, out = bg.text(), json.JSONDecoder(), 0, []
    while i < len(text):
        if text[i] != "{":
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl + 1
            continue
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            break  # the rest has not come yet
        out.append(obj)
    return out


def fleet_of(host):
    """`sessions --fleet --output json` on the host: its `fleet` list, and the document."""
    p = host.helper("sessions", "--fleet", "--output", "json")
    doc = json.loads(p.stdout)
    return doc["fleet"], doc


def detached_revokes(user):
    """pids of revoke --fleet's detached second pass (lockcmd.c delete_again_later) for user."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == str(HELPER).encode() and argv[1:2] == [b"revoke"] and user.encode() in argv:
            pids.append(int(p))
    return pids


@pytest.fixture
def fleet(cluster, workdir, syslog):
    """A fleet namespace and a namespace of mapped ServiceAccounts of this test's
    own, with the helper's RBAC and the fleet's policy as `rbac` prints them
    for the config; all of it deleted after."""
    tag = secrets.token_hex(3)
    ns, apps = f"kct-fleet-{tag}", f"kct-fleet-apps-{tag}"
    policy = f"{MINTER}-minter-{ns}"
    cluster.ensure_sa(apps, "alice", clusterrole="view")
    made = {"ns": ns, "apps": apps, "who": f"system:serviceaccount:{apps}:alice", "manifest": None}

    def config(name, host_id, user, server):
        path = workdir.path / f"config-{name}.yaml"
        path.write_text(f"host_id: {host_id}\nfleet:\n  namespace: {ns}\nclusters:\n"
                        f"{workdir.cluster_entry('test', server=server)}"
                        f"mappings:\n  - user: {user}\n    cluster: test\n    serviceaccount: {apps}/alice\n")
        path.chmod(0o644)
        if made["manifest"] is None:
            made["manifest"] = run([HELPER, "rbac", "--config", path]).stdout
            cluster.kubectl("apply", "-f", "-", input=made["manifest"])
            # The authorizer and the admission policy follow their informers within moments.
            assert wait_for(lambda: cluster.kubectl("auth", "can-i", "list", "configmaps", "-n", ns, "--as", MINTER,
                                                    check=False).stdout.strip() == "yes", 10)
        return path

    made["config"] = config
    yield made
    cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy,
                    "--ignore-not-found", check=False)
    cluster.kubectl("delete", "namespace", ns, apps, "--wait=false", check=False)


@pytest.fixture
def bastions(cluster, users, pam_service, fleet):
    """Bastions A and B, each with its own log, for one user whose home they share."""
    user = users.make()
    base = Path(tempfile.mkdtemp(prefix="kc-fleet."))
    network = Network(cluster)
    hosts, logs = [], []
    tag = secrets.token_hex(3)

    def make(name):
        cfg = fleet["config"](name, f"{name}-{tag}", user, network.server)
        hosts.append(Host(name, base, cfg, pam_service(f"config={cfg}"), network))
        hosts[-1].host_id = f"{name}-{tag}"
        logs.append(HostLog(hosts[-1]))
        hosts[-1].log = logs[-1]
        return hosts[-1]

    try:
        yield user, make
    finally:
        for pid in detached_revokes(user):  # the test's own revoke: its pass 301 s later is not waited for
            os.kill(pid, signal.SIGKILL)
        for h in hosts:
            h.close()
        for log in logs:
            log.close()
        network.close()
        for p in base.iterdir():
            p.rmdir()
        base.rmdir()


def login_token(host, user, uid):
    """A login on host and its token there."""
    s = host.login(user)
    token = host.token(uid)
    assert token, f"login on {host.name}: no token file: {s.lines}"
    return s, token


def two_sessions(cluster, users, fleet, user, make):
    """Bastions A and B, a session of the user on each with a token of its own
    that the session's kubectl and the API server accept, and each host's timer
    run once (it says in the fleet's namespace where it mints). Returns the
    hosts, the tokens and {host id: the user's Secret there}."""
    a, b = make("bastion-a"), make("bastion-b")
    uid, who = users.uid(user), fleet["who"]
    _, ta = login_token(a, user, uid)
    _, tb = login_token(b, user, uid)
    assert ta != tb
    for h, t in ((a, ta), (b, tb)):
        assert h.whoami(user) == who, f"the session on {h.name} is broken"
        assert cluster.whoami(t) == who, f"{h.name}'s token is refused"
    a.helper("refresh")
    b.helper("refresh")
    secret_of = {}
    for h in (a, b):
        found = our_secrets(cluster, host_id=h.host_id, user=user)
        assert len(found) == 1 and found[0][0] == fleet["apps"], (h.name, found)
        secret_of[h.host_id] = found[0][1]
    return a, b, ta, tb, secret_of


def logout_all(*hosts):
    for h in hosts:
        for s in list(h.sessions):
            h.logout(s)


def test_revoke_fleet_on_one_bastion_ends_access_on_both(cluster, users, fleet, bastions):
    user, make = bastions
    started = time.monotonic()
    a, b, ta, tb, secret_of = two_sessions(cluster, users, fleet, user, make)
    uid, ns, apps = users.uid(user), fleet["ns"], fleet["apps"]
    lock = lock_name(user)

    # 1. sessions --fleet on A: the user's grants on both hosts.
    listed, doc = fleet_of(a)
    mine = sorted((g["host"], g["namespace"], g["secret"]) for g in listed if g["user"] == user)
    assert mine == sorted((h, apps, s) for h, s in secret_of.items()), (listed, secret_of)
    assert doc["host"] == a.host_id and [u["user"] for u in doc["users"]] == [user], doc

    # A stream of the user's in B's session (kubectl's watch, which never reconnects).
    kw = Background([*b.ns, "runuser", "-u", user, "--", *user_env(user, f"{users.home(user)}/.kube/config-eks"),
                     "kubectl", "get", "pods", "-n", apps, "-w"], start_new_session=True)
    assert wait_for(lambda: "kubectl" in run([*b.ns, "ss", "-Htnp", "state", "established"]).stdout, 15), kw.text()

    # The API server's order of writes: watches from before the revoke (resourceVersions
    # are etcd's revisions, one sequence for every kind), and its audit log.
    def admin_watch(kind, namespace):
        return Background(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "-n", namespace, "get", kind,
                           "--watch", "--output-watch-events", "-o", "json"])

    cm_watch, secret_watch = admin_watch("configmaps", ns), admin_watch("secrets", apps)
    try:
        assert wait_for(lambda: len([e for e in watch_events(cm_watch) if e["type"] == "ADDED"]) >= 2, 15), \
            cm_watch.text()
        assert wait_for(lambda: {e["object"]["metadata"]["name"] for e in watch_events(secret_watch)}
                        >= set(secret_of.values()), 15), secret_watch.text()
        time.sleep(0.5)  # the watches are past their initial lists
        mark = cluster.audit_mark()

        # 2. The kill switch on A; B's timer runs right after, inside B.
        revoked_at = time.monotonic()
        r = a.helper("revoke", user, "--fleet")
        assert f"the fleet: {user} is locked on every cluster" in r.stdout, r.stdout + r.stderr
        b_refresh = b.helper("refresh", check=False)
        assert b.token(uid) is None, f"B's token file is still there after its refresh: {b_refresh.stderr}"
        for t in (ta, tb):
            cluster.wait_refused(t, limit=max(0.0, REFUSED_WITHIN_S - (time.monotonic() - revoked_at)))
        refused_after = time.monotonic() - revoked_at
        assert refused_after <= REFUSED_WITHIN_S
        time.sleep(1)  # the watches deliver the last events
    finally:
        cm_text, secret_text = cm_watch.stop(), secret_watch.stop()

    # B's own cut, in B's own log; A's log says the lock, and B's Secret deleted from A.
    b_log, a_log = b.log.text(), a.log.text()
    assert f"cut uid={uid} cluster=test connections=" in b_log, b_log
    assert "cut uid=" not in a_log, a_log  # nothing of the user's was open on A
    assert f"lock user={user} cluster=* " in a_log, a_log
    assert f"revoke fleet cluster=test host={b.host_id} namespace={apps} secret={secret_of[b.host_id]}" in a_log, \
        a_log
    assert wait_for(lambda: kw.p.poll() is not None, 10), f"B's watch was not cut: {kw.text()}"
    assert b.whoami(user).startswith("failed") and a.whoami(user).startswith("failed")
    assert our_secrets(cluster, user=user) == []

    # 3. The lock was written before any Secret was deleted.
    events = [e for e in cluster.audit_events(mark) if e.get("user", {}).get("username") == MINTER]
    lock_writes = [e for e in events if e["objectRef"].get("resource") == "configmaps"
                   and e["objectRef"].get("namespace") == ns and e["objectRef"].get("name") == lock
                   and e["verb"] in ("create", "update") and e["responseStatus"]["code"] in (200, 201)]
    deletes = [e for e in events if e["objectRef"].get("resource") == "secrets" and e["verb"] == "delete"
               and e["responseStatus"]["code"] == 200 and not e["objectRef"].get("subresource")]
    assert lock_writes, [(e["verb"], e["objectRef"], e["responseStatus"]["code"]) for e in events]
    assert {e["objectRef"]["name"] for e in deletes} == set(secret_of.values()), deletes
    lock_sent = min(utc(e["requestReceivedTimestamp"]) for e in lock_writes)
    assert all(utc(e["requestReceivedTimestamp"]) > lock_sent for e in deletes), (lock_writes, deletes)
    lock_added = [int(e["object"]["metadata"]["resourceVersion"]) for e in watch_events(cm_watch)
                  if e["type"] == "ADDED" and e["object"]["metadata"]["name"] == lock]
    secret_deleted = {e["object"]["metadata"]["name"]: int(e["object"]["metadata"]["resourceVersion"])
                      for e in watch_events(secret_watch) if e["type"] == "DELETED"}
    assert len(lock_added) == 1, cm_text
    assert set(secret_deleted) == set(secret_of.values()), secret_text
    assert all(rv > lock_added[0] for rv in secret_deleted.values()), (lock_added, secret_deleted)

    # 1, after: no grant of the user's anywhere in the fleet.
    listed, _ = fleet_of(a)
    assert [g for g in listed if g["user"] == user] == [], listed

    # 4. A ServiceAccount with edit in the fleet's namespace (here the user's own,
    #    mapped one) may write ConfigMaps there by RBAC; the policy refuses it the lock.
    cluster.kubectl("-n", ns, "create", "rolebinding", "alice-edit", "--clusterrole=edit",
                    f"--serviceaccount={apps}:alice")
    sa_token = cluster.kubectl("-n", apps, "create", "token", "alice", "--duration=10m").stdout.strip()
    sa_kc = a.root / "alice.kubeconfig"
    sa_kc.touch(mode=0o600)
    sa_kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cluster.server, "certificate-authority": cluster.ca_file}}],
        "users": [{"name": "u", "user": {"token": sa_token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": ns}}]}))

    def as_sa(*args):
        return run(["kubectl", "--kubeconfig", sa_kc, *args], check=False)

    assert wait_for(lambda: as_sa("auth", "can-i", "delete", "configmaps").stdout.strip() == "yes", 10)
    before = cluster.kubectl("-n", ns, "get", "configmap", lock, "-o", "json").stdout
    for args in (["delete", "configmap", lock],
                 ["annotate", "configmap", lock, "lifted=yes"],
                 ["patch", "configmap", lock, "--type=merge", "-p", '{"data":{"until":"1"}}']):
        p = as_sa(*args)
        assert p.returncode != 0 and POLICY_MESSAGE in p.stderr, (args, p.stdout, p.stderr)
    after = cluster.kubectl("-n", ns, "get", "configmap", lock, "-o", "json").stdout
    assert json.loads(after)["metadata"]["resourceVersion"] == json.loads(before)["metadata"]["resourceVersion"]

    logout_all(a, b)
    print(f"\nrevoke --fleet to both tokens refused: {refused_after:.1f}s; test {time.monotonic() - started:.1f}s")


def test_a_login_while_the_fleet_lock_stands_mints_nothing_until_unlock(cluster, users, fleet, bastions):
    """The user's session on B stays open: B's refresh has revoked what it
    held; a second login on B must not mint for either session."""
    user, make = bastions
    a, b, ta, tb, _ = two_sessions(cluster, users, fleet, user, make)
    uid, ns, who = users.uid(user), fleet["ns"], fleet["who"]
    a.helper("revoke", user, "--fleet")
    b.helper("refresh")
    assert a.token(uid) is None and b.token(uid) is None
    assert our_secrets(cluster, user=user) == []

    mark = len(b.log.text().splitlines())
    b2 = b.login(user)  # the PAM session opens all the same
    assert b2.p.poll() is None
    assert any(i.startswith(LOCKED) and "unlock --fleet" in i for i in b2.infos), b2.lines
    minted = [l for l in b.log.text().splitlines()[mark:] if " mint user=" in l]
    token, made = b.token(uid), our_secrets(cluster, user=user)
    seen = (token is not None, made, minted)
    assert seen == (False, [], []), (
        "a login on B while the fleet's lock stands minted: (token file on B, the user's Secrets, B's mint lines); "
        f"the API server says of B's token: {cluster.whoami(token) if token else '-'}")

    # unlock --fleet on A: the lock goes; A's open session has a token again at once, a login on B mints.
    u = a.helper("unlock", user, "--fleet")
    assert f"{user} is unlocked" in u.stdout, u.stdout + u.stderr
    assert cluster.kubectl("-n", ns, "get", "configmap", lock_name(user), check=False).returncode != 0
    ta2 = a.token(uid)
    assert ta2 and ta2 != ta and cluster.whoami(ta2) == who and a.whoami(user) == who
    b3, tb2 = login_token(b, user, uid)
    assert not any(i.startswith(LOCKED) for i in b3.infos), b3.lines
    assert tb2 != tb and cluster.whoami(tb2) == who and b.whoami(user) == who
    logout_all(a, b)


def test_a_shorter_fleet_revoke_on_another_bastion_keeps_the_longer_lock(cluster, users, fleet, bastions):
    """`revoke --fleet` on A (until unlock), then `revoke --fleet --for 1s` on
    B: the lock in the fleet's namespace keeps A's end, B says so, and once
    B's second has passed a login on B still mints nothing."""
    user, make = bastions
    a, b, *_ = two_sessions(cluster, users, fleet, user, make)
    uid, ns = users.uid(user), fleet["ns"]
    a.helper("revoke", user, "--fleet")
    r = b.helper("revoke", user, "--fleet", "--for", "1s")
    assert "the fleet's lock on " + user + " stands longer and is kept" in r.stdout, r.stdout + r.stderr
    cm = json.loads(cluster.kubectl("-n", ns, "get", "configmap", lock_name(user), "-o", "json").stdout)
    assert cm["data"]["until"] == "0", cm["data"]
    time.sleep(2.5)
    b.helper("refresh")
    b2 = b.login(user)
    assert any(i.startswith(LOCKED) for i in b2.infos), b2.lines
    assert b.token(uid) is None and our_secrets(cluster, user=user) == []
    a.helper("unlock", user, "--fleet")
    logout_all(a, b)


def test_the_helper_mints_no_token_in_the_fleets_namespace(cluster, fleet):
    """The fleet's namespace maps no ServiceAccount: the helper's Role there is
    for the fleet's ConfigMaps alone, and it cannot mint a token for an
    account someone keeps there."""
    fleet["config"]("rbac-only", "rbac-only", "nobody-in-particular", cluster.server)
    ns = fleet["ns"]
    cluster.kubectl("-n", ns, "create", "serviceaccount", "bystander")
    status, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/bystander/token",
                                   cluster.minter_token(),
                                   {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                    "spec": {"expirationSeconds": 600}})
    role = json.loads(cluster.kubectl("-n", ns, "get", "role", f"{MINTER}-minter", "-o", "json").stdout)
    assert status == 403, (status, role["rules"])


def test_a_lock_this_version_cannot_read_still_stops_mints(cluster, users, fleet, bastions):
    """A lock ConfigMap another version of the helper wrote in a format this one
    cannot read (here: no `user` in its data) is a lock all the same: the login
    it names mints nothing, refresh rotates nothing on that cluster, the log
    says which ConfigMap and what to do, and `unlock --fleet` gives access back."""
    user, make = bastions
    a = make("bastion-a")
    uid, ns, who = users.uid(user), fleet["ns"], fleet["who"]
    s1, t1 = login_token(a, user, uid)
    lock = lock_name(user)
    status, body = cluster.request(
        "POST", f"/api/v1/namespaces/{ns}/configmaps", cluster.minter_token(),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": lock, "labels": {"app.kubernetes.io/managed-by": "pam-kubeconfig",
                                               "pam-kubeconfig/kind": "lock"}},
         "data": {"subject": user, "expires": "never"}})
    assert status == 201, (status, body)

    mark = len(a.log.text().splitlines())
    s2 = a.login(user)
    assert s2.p.poll() is None
    assert any(i.startswith(LOCKED) for i in s2.infos), s2.lines
    a.helper("refresh")
    new = a.log.text().splitlines()[mark:]
    assert not [l for l in new if " mint user=" in l], new
    assert [l for l in new if f" revoke user={user} " in l and " reason=locked " in l], new
    assert a.token(uid) is None, "the token file stayed while an unreadable lock stood"
    assert cluster.whoami(t1) == 401, "the session's token outlived the lock"
    said = [l for l in new if f"{ns}/{lock} cannot be read" in l]
    assert said and "unlock USER --fleet" in said[0], new

    # What the message says works: the unlock removes the ConfigMap and the open sessions have a token at once.
    u = a.helper("unlock", user, "--fleet")
    assert f"{user} is unlocked" in u.stdout, u.stdout + u.stderr
    assert cluster.kubectl("-n", ns, "get", "configmap", lock, check=False).returncode != 0
    t2 = a.token(uid)
    assert t2 and cluster.whoami(t2) == who and a.whoami(user) == who
    logout_all(a)
