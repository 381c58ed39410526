"""Issue 14: two bastions share one home (as over NFS). Each simulated host
(tests/pam/bastions.py) has its own /run/pam_kubeconfig, /var/lib/pam_kubeconfig,
/var/cache/pam_kubeconfig and host_id; the user's ~/.kube/config-eks is one file.
Interleaved and concurrent logins, rotations, gc and logouts on both never break
the other host's session, the file is valid YAML that kubectl reads at every
step, and our entries are byte-identical whichever host wrote them last."""
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from bastions import Host, Network
from conftest import RUN_DIR, kubeconfig_of
from kubeconfig_checks import (USER_CONFIG, WHO, assert_ours, entry, home_holds, kubectl_reads, load, our_items,
                               temp_files, write_as)


def host_config(workdir, name, user, server, extra=""):
    path = workdir.path / f"config-{name}.yaml"
    path.write_text(f"host_id: {name}\n{extra}clusters:\n{workdir.cluster_entry('test', server=server)}"
                    f"mappings:\n  - user: {user}\n    cluster: test\n    serviceaccount: team-a/alice\n")
    path.chmod(0o644)
    return path


@pytest.fixture
def bastions(cluster, workdir, users, pam_service):
    """Bastions A and B for one user, whose home they share."""
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    write_as(users, user, users.home(user) / ".kube" / "config", USER_CONFIG)
    base = Path(tempfile.mkdtemp(prefix="kc-bastions."))
    network = Network(cluster)
    hosts = []

    def make(name, extra=""):
        cfg = host_config(workdir, name, user, network.server, extra)
        hosts.append(Host(name, base, cfg, pam_service(f"config={cfg}"), network))
        return hosts[-1]

    yield user, make
    for h in hosts:
        h.close()
    network.close()
    for p in base.iterdir():
        p.rmdir()
    base.rmdir()


class Watch:
    """What every step must leave: the shared file valid and read by kubectl, our
    entries as the first write made them, and each host's open sessions working
    with that host's own token."""

    def __init__(self, cluster, users, user, hosts):
        self.cluster, self.users, self.user, self.hosts = cluster, users, user, hosts
        self.uid = users.uid(user)
        self.kc = kubeconfig_of(users, user)
        self.reference = None
        self.tokens = set()

    def expect(self, text):
        """Our entries as they must stay from now on (the user changed them)."""
        self.reference = our_items(text)

    def settle(self, since):
        """Past the API server's cache of accepted tokens (10 s): a check after
        this sees what a revocation at `since` did."""
        time.sleep(max(0.0, since + 11 - time.monotonic()))

    def check(self, step):
        text = self.kc.read_text()
        doc = load(self.kc)  # valid YAML
        assert_ours(doc, token_file=RUN_DIR / str(self.uid) / "test.token")
        kubectl_reads(self.user, self.kc)
        if self.reference is None:
            self.reference = our_items(text)
        assert our_items(text) == self.reference, f"{step}: our entries differ from what was last made of them"
        assert temp_files(self.kc.parent) == [] and not self.kc.with_name("config-eks.lock").exists(), step
        seen = {}
        for h in self.hosts:
            token = h.token(self.uid)
            if not h.sessions:
                continue
            assert token, f"{step}: host {h.name} has a session and no token file"
            self.tokens.add(token)
            seen[h.name] = token
            assert h.whoami(self.user) == WHO, f"{step}: the session on {h.name} is broken"
            assert self.cluster.whoami(token) == WHO, f"{step}: {h.name}'s token is refused"
        if len(seen) == 2:
            assert len(set(seen.values())) == 2, f"{step}: both hosts hold the same token"
        return text


def test_two_bastions_share_one_home(cluster, users, bastions):
    user, make = bastions
    a, b = make("bastion-a"), make("bastion-b")
    w = Watch(cluster, users, user, (a, b))
    kc, uid = w.kc, w.uid
    timings = {}

    def timed(what, fn, *args):
        start = time.monotonic()
        r = fn(*args)
        timings.setdefault(what, []).append(time.monotonic() - start)
        return r

    # 1. A logs in first: the file is A's fresh write.
    a1 = timed("login", a.login, user)
    first_write = w.check("A login")
    # 2. B logs in: the same entries, nothing to write.
    b1 = timed("login", b.login, user)
    assert w.check("B login") == first_write
    assert a.token(uid) != b.token(uid)

    # 3. The user's own changes, made with kubectl in B's session.
    for args in (["set-context", "--current", "--namespace=team-b"],
                 ["set-cluster", "mine", "--server=https://mine.example:6443"],
                 ["set-context", "mine", "--cluster=mine", "--user=me"]):
        assert b.kubectl(user, "config", *args).returncode == 0, args
    w.expect(kc.read_text())
    with_user = w.check("kubectl on B")
    assert entry(load(kc), "contexts", "test")["context"]["namespace"] == "team-b"

    # 4. A rotates: A's token changes, B's does not, the file is as it was.
    b_token, a_token = b.token(uid), a.token(uid)
    timed("rotation", a.rotate, user)
    assert a.token(uid) != a_token and b.token(uid) == b_token
    assert w.check("A rotation") == with_user

    # 5. Our server is changed under both (a tool, by hand); B's next login puts
    #    back exactly what A had written.
    assert a.kubectl(user, "config", "set-cluster", "test", "--server=https://stale.invalid:6443").returncode == 0
    timed("login", b.login, user)
    assert w.check("B login over a changed entry") == with_user

    # 6. A's only session ends and A runs its timers: A's tokens go, B's sessions
    #    go on (checked past the API server's 10 s cache of accepted tokens).
    a_tokens = {a.token(uid), a_token}
    timed("logout", a.logout, a1)
    ended = time.monotonic()
    assert a.token(uid) is None
    a.helper("gc")
    a.helper("refresh")
    for t in a_tokens:
        cluster.wait_refused(t)
    w.settle(ended)
    assert w.check("A logout, gc and refresh") == with_user
    assert a.whoami(user).startswith("failed")  # no session on A: no token there

    # 7. B rotates.
    timed("rotation", b.rotate, user)
    assert w.check("B rotation") == with_user

    # 8. The file is deleted; B writes it anew: the very bytes A wrote first.
    kc.unlink()
    timed("login", b.login, user)
    assert kc.read_text() == first_write
    w.expect(first_write)
    timed("login", a.login, user)
    assert w.check("A login after B's fresh write") == first_write

    # 9. At once: a login, a rotation and a logout on each host.
    a3 = a.login(user)
    jobs = [lambda: a.login(user), lambda: b.login(user), lambda: a.rotate(user), lambda: b.rotate(user),
            lambda: a.logout(a3), lambda: b.logout(b1)]
    errors = []

    def run_job(job):
        try:
            job()
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(repr(e))

    # Meanwhile a reader sees the file whole at every instant (renames, never in-place writes).
    done, reads, torn = threading.Event(), [0], []

    def reader():
        while not done.is_set():
            try:
                doc = yaml.safe_load(kc.read_text())
                assert_ours(doc)
            except Exception as e:  # noqa: BLE001 -- reported below
                torn.append(repr(e))
            reads[0] += 1

    threads = [threading.Thread(target=run_job, args=(j,)) for j in jobs]
    watcher = threading.Thread(target=reader)
    watcher.start()
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    timings["concurrent step"] = [time.monotonic() - start]
    done.set()
    watcher.join()
    assert errors == []
    assert torn == [] and reads[0] > 2, (reads, torn[:3])
    assert w.check("concurrent logins, rotations and logouts") == first_write
    # The two writers met at kubectl's lock; neither waited it out.
    assert [s.infos for s in a.sessions + b.sessions if any("left as it was" in i for i in s.infos)] == []

    # 10. Every session of A ends, then every one of B.
    for s in list(a.sessions):
        a.logout(s)
    w.settle(time.monotonic())
    assert w.check("all of A's sessions ended") == first_write
    for s in list(b.sessions):
        b.logout(s)
    # Nothing is written at logout: the file stays, our entries in it.
    assert kc.read_text() == first_write
    kubectl_reads(user, kc)
    for h in (a, b):
        assert h.token(uid) is None
    for t in w.tokens:
        cluster.wait_refused(t)
    assert home_holds(users.home(user), w.tokens) == []
    assert (kc.parent / "config").read_text() == USER_CONFIG
    print("\n" + ", ".join(f"{k}: {max(v):.2f}s max of {len(v)}" for k, v in timings.items()))


def test_remove_on_logout_on_one_bastion_breaks_the_other_as_check_warns(cluster, users, bastions):
    """What `check` warns about kubeconfig.remove_on_logout: true, shown: A's last
    logout removes the entries B's session uses; B's next login writes them back."""
    user, make = bastions
    a = make("bastion-a", extra="kubeconfig:\n  remove_on_logout: true\n")
    b = make("bastion-b")
    kc = kubeconfig_of(users, user)
    warned = a.helper("check", check=False)
    assert "kubeconfig.remove_on_logout is true: with homes shared between bastions" in warned.stderr
    a1 = a.login(user)
    b1 = b.login(user)
    assert b.whoami(user) == WHO
    a.logout(a1)
    assert not kc.exists()  # only ours was there: A removed the file B's session uses
    assert b.whoami(user).startswith("failed")
    b2 = b.login(user)
    assert b.whoami(user) == WHO and entry(load(kc), "contexts", "test") is not None
    b.logout(b1)
    b.logout(b2)
