"""kc_sockcut() against a real `kubectl get pods -w` (issue 13): the watch of a
user is cut within a second, another user's and root's watches on the same API
server keep going. Driven through build/tests/kc-sockcut UID URL (root)."""
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from clients import audit_credentials, jwt_claims, kubeconfig_text, mint, wait_for, write_token
from conftest import BUILD, Background

SOCKCUT = BUILD / "tests" / "kc-sockcut"
NS = "kc-sockcut"
SA = "watcher"


class WatchUser:
    """A test user with a token file (root-owned 0711 directory, file 0400 of the
    user) and a kubeconfig naming it."""

    def __init__(self, cluster, users, base, secret=None):
        self.user = users.make("kcs")
        self.uid = users.uid(self.user)
        self.dir = base / str(self.uid)
        self.dir.mkdir(mode=0o711)
        os.chmod(self.dir, 0o711)
        self.token = mint(cluster, NS, SA, "1h", secret)
        write_token(self.dir, "test.token", self.token, self.uid)
        self.kubeconfig = self.dir / "kubeconfig"
        self.kubeconfig.write_text(kubeconfig_text(cluster.server, base / "ca.crt", self.dir / "test.token"))
        os.chmod(self.kubeconfig, 0o644)

    def watch(self, clients=None):
        """kubectl get pods -w, or with clients the client-go program's watch."""
        if clients:
            return Background(clients.argv("clientgo", self.user, str(self.kubeconfig), "watch", "-n", NS,
                                           "-every", "2s"))
        home = pwd.getpwnam(self.user).pw_dir
        return Background(["runuser", "-u", self.user, "--", "env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}",
                           f"KUBECONFIG={self.kubeconfig}", "kubectl", "get", "pods", "-n", NS, "-w"])


def connections(port, uid):
    """Established TCP connections owned by uid to the API server's port."""
    out = subprocess.run(["ss", "-tnHe", "state", "established", "dport", "=", f":{port}"], capture_output=True,
                         text=True, check=True).stdout
    return [l for l in out.splitlines() if re.search(rf"\buid:{uid}\b", l)]


def make_pod(cluster):
    name = f"p{secrets.token_hex(3)}"
    cluster.kubectl("-n", NS, "run", name, "--image=busybox", "--restart=Never",
                    "--overrides", '{"spec":{"automountServiceAccountToken":false}}')
    return name


@pytest.fixture
def base(cluster):
    cluster.ensure_sa(NS, SA, clusterrole="view")
    cluster.kubectl("-n", NS, "create", "serviceaccount", "default", check=False)
    d = Path(tempfile.mkdtemp(prefix="kc-sockcut."))
    os.chmod(d, 0o755)
    shutil.copy(cluster.ca_file, d / "ca.crt")
    os.chmod(d / "ca.crt", 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_sockcut_supported_here():
    p = subprocess.run([SOCKCUT, "--supported"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.strip() == "supported", p.stdout + p.stderr


def test_kubectl_watch_is_cut_within_a_second(cluster, users, base):
    port = int(cluster.server.rsplit(":", 1)[1])
    first_pod = make_pod(cluster)
    alice = WatchUser(cluster, users, base)
    bob = WatchUser(cluster, users, base)
    mark = cluster.audit_mark()
    watches = {"alice": alice.watch(), "bob": bob.watch(),
               "root": Background(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "get", "pods", "-n", NS,
                                   "-w"])}
    try:
        for name, w in watches.items():
            assert wait_for(lambda w=w: w.saw(first_pod), 20), f"{name}: {w.text()}"
        assert wait_for(lambda: connections(port, alice.uid) and connections(port, bob.uid), 10)

        start = time.monotonic()
        p = subprocess.run([SOCKCUT, str(alice.uid), cluster.server], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        cut = int(re.match(r"cut (\d+) in (\d+) us", p.stdout).group(1))
        assert cut >= 1, p.stdout
        assert connections(port, alice.uid) == []
        # kubectl sees its watch end: it prints the watch's ERROR event (a Status
        # naming the aborted read) and exits, with status 0; it does not reconnect.
        w = watches["alice"]
        assert wait_for(lambda: w.p.poll() is not None, 1, step=0.02), f"kubectl still running:\n{w.text()}"
        ended = time.monotonic() - start
        print(f"\n{p.stdout.strip()}; kubectl get -w exited {ended * 1000:.0f} ms after the cut "
              f"(status {w.p.returncode}): {w.text().splitlines()[-1]!r}")
        assert ended < 1.0
        assert "software caused connection abort" in w.text(), w.text()
        # It did not come back: no new connection, no request of alice's after the cut.
        time.sleep(2)
        assert connections(port, alice.uid) == []

        # The others still watch: a new pod reaches bob and root, over the connections they had.
        second_pod = make_pod(cluster)
        for name in ("bob", "root"):
            assert wait_for(lambda n=name: watches[n].saw(second_pod), 10), f"{name}: {watches[name].text()}"
            assert watches[name].p.poll() is None
        assert len(connections(port, bob.uid)) >= 1
        assert not watches["alice"].saw(second_pod)
        # The audit log names alice's token for her one watch, none after.
        jti = jwt_claims(alice.token)["jti"]
        assert any(c[1] == jti for c in audit_credentials(cluster, mark, "kubectl"))
    finally:
        for w in watches.values():
            w.stop()


def test_cut_alone_does_not_stop_a_client_that_reconnects(cluster, users, base, clients):
    """Why the token is revoked before the cut, and the cut repeated: client-go's
    watch (as an informer's) opens a new one at once while the token is accepted;
    once the API server refuses it (its ~10 s authentication cache), a cut is final."""
    secret = f"kc-bind-{secrets.token_hex(4)}"
    cluster.kubectl("-n", NS, "create", "secret", "generic", secret)
    try:
        alice = WatchUser(cluster, users, base, secret=secret)
        w = alice.watch(clients)
        try:
            assert wait_for(lambda: w.saw("watch started"), 30), w.text()
            subprocess.run([SOCKCUT, str(alice.uid), cluster.server], check=True, capture_output=True, timeout=10)
            # It comes back at once (the cut walks again while it finds the uid's
            # sockets, so a client that reconnects within the walk is cut again:
            # it may come back more than once before it backs off).
            assert wait_for(lambda: w.text().count("watch started") >= 2, 5), w.text()
            print(f"\nclient-go after a cut with its token still valid:\n{w.text()}")

            cluster.kubectl("-n", NS, "delete", "secret", secret, "--wait=true")
            cluster.wait_refused(alice.token)
            subprocess.run([SOCKCUT, str(alice.uid), cluster.server], check=True, capture_output=True, timeout=10)
            assert wait_for(lambda: "watch error status=401" in w.text(), 5), w.text()
            started = w.text().count("watch started")
            time.sleep(3)
            assert w.text().count("watch started") == started, w.text()
        finally:
            w.stop()
    finally:
        cluster.kubectl("-n", NS, "delete", "secret", secret, "--ignore-not-found", check=False)
