"""The three real clients of issue 13 read a kubeconfig `tokenFile` as the user:
kubectl, a client-go program (tests/clients/clientgo, kc-clientgo) and the Python
`kubernetes` client. client-go follows a rotated file (the audit log shows the new
token's jti); the Python client reads the file once, when it loads the kubeconfig."""
import datetime
import os
import pwd
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from clients import audit_credentials, jwt_claims, kubeconfig_text, mint, wait_for, write_token
from conftest import Background

NS = "kc-clients"
SA = "reader"
WHO = f"system:serviceaccount:{NS}:{SA}"
TOKEN_NAME = "test.token"
# client-go re-reads a tokenFile once its copy is 50 s old (a 1 min period less
# 10 s leeway), at the next request; requests go every 10 s as in issue 13.
PERIOD = 10
SWITCH_LIMIT = 70


class TokenUser:
    """A test user whose session KUBECONFIG is ~/.kube/config-eks:~/.kube/config,
    the first naming a token file in a root-owned 0711 directory (as
    /run/pam_kubeconfig/<uid>/ is), the second the user's own other entries."""

    def __init__(self, cluster, users):
        self.cluster = cluster
        self.user = users.make("kcc")
        self.uid = users.uid(self.user)
        self.home = users.home(self.user)
        self.base = Path(tempfile.mkdtemp(prefix="kc-tokens."))
        os.chmod(self.base, 0o755)
        self.dir = self.base / str(self.uid)
        self.dir.mkdir(mode=0o711)
        os.chmod(self.dir, 0o711)
        self.token_file = self.dir / TOKEN_NAME
        ca = self.base / "ca.crt"
        shutil.copy(cluster.ca_file, ca)
        os.chmod(ca, 0o644)
        kube = self.home / ".kube"
        kube.mkdir(mode=0o700, exist_ok=True)
        (kube / "config-eks").write_text(kubeconfig_text(cluster.server, ca, self.token_file))
        # The user's own file: another cluster, never the current one.
        (kube / "config").write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: elsewhere\n  cluster:\n    server: https://127.0.0.1:9\n"
            "users:\n- name: elsewhere\n  user:\n    username: nobody\n"
            "contexts:\n- name: elsewhere\n  context:\n    cluster: elsewhere\n    user: elsewhere\n")
        for p in (kube, kube / "config-eks", kube / "config"):
            os.chown(p, self.uid, pwd.getpwnam(self.user).pw_gid)
            os.chmod(p, 0o700 if p.is_dir() else 0o600)
        self.kubeconfig = f"{kube / 'config-eks'}:{kube / 'config'}"
        self.secrets = []
        self.tokens = []

    def mint(self, bound=False):
        """A new token for the ServiceAccount; bound to a fresh Secret when asked
        (deleting that Secret revokes it). Returns (token, secret name)."""
        secret = None
        if bound:
            secret = f"kc-bind-{secrets.token_hex(4)}"
            self.cluster.kubectl("-n", NS, "create", "secret", "generic", secret)
            self.secrets.append(secret)
        token = mint(self.cluster, NS, SA, "1h", secret)
        self.tokens.append(token)
        return token, secret

    def install(self, token, newline=False):
        write_token(self.dir, TOKEN_NAME, token, self.uid, newline=newline)

    def revoke(self, secret):
        self.cluster.kubectl("-n", NS, "delete", "secret", secret, "--wait=true")

    def home_holds_no_token(self):
        for path in self.home.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for t in self.tokens:
                    assert t.encode() not in data, f"a token is in {path}"

    def close(self):
        for s in self.secrets:
            self.cluster.kubectl("-n", NS, "delete", "secret", s, "--ignore-not-found", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def tokenuser(cluster, users):
    cluster.ensure_sa(NS, SA, clusterrole="view")
    # Pods need their namespace's "default" ServiceAccount (no controller makes it here).
    cluster.kubectl("-n", NS, "create", "serviceaccount", "default", check=False)
    t = TokenUser(cluster, users)
    yield t
    t.close()


class Watcher(Background):
    """kc-clientgo watch running as the user."""

    def __init__(self, clients, t, every=PERIOD):
        super().__init__(clients.argv("clientgo", t.user, t.kubeconfig, "watch", "-n", NS, "-every", f"{every}s"))

    def requests(self):
        """[(status, line)] of the program's periodic requests so far."""
        out = []
        for line in self.lines:
            parts = line.split()
            if len(parts) > 3 and parts[1] == "request":
                out.append((parts[4].removeprefix("status="), line))
        return out


def _utc(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_three_clients_read_the_token_file(cluster, clients, tokenuser):
    token, _ = tokenuser.mint()
    tokenuser.install(token)
    st = os.stat(tokenuser.token_file)
    assert (st.st_uid, st.st_mode & 0o777) == (tokenuser.uid, 0o400)
    for client in ("kubectl", "clientgo", "python"):
        who, p = clients.whoami(client, tokenuser.user, tokenuser.kubeconfig)
        assert who == WHO, f"{client} as {tokenuser.user}: {p.stdout}\n{p.stderr}"
        assert token not in p.stdout + p.stderr
    tokenuser.home_holds_no_token()


def test_clients_refuse_a_token_file_they_cannot_read(cluster, clients, tokenuser, users):
    """The file is the credential: a user who cannot read it gets nothing (here
    another test user pointed at the same kubeconfig and file)."""
    token, _ = tokenuser.mint()
    tokenuser.install(token)
    other = users.make("kco")
    kube = users.home(other) / ".kube"
    kube.mkdir(mode=0o700)
    shutil.copy(tokenuser.home / ".kube" / "config-eks", kube / "config-eks")
    os.chown(kube / "config-eks", users.uid(other), -1)
    os.chown(kube, users.uid(other), -1)
    for client in ("kubectl", "clientgo", "python"):
        who, p = clients.whoami(client, other, str(kube / "config-eks"))
        assert who is None, f"{client} as {other} authenticated as {who}"
        assert token not in p.stdout + p.stderr


def test_python_client_reads_the_token_file_once(cluster, clients, tokenuser):
    """kubernetes (PyPI) 33.1.0: load_kube_config() reads tokenFile once (relative to
    the kubeconfig's directory; `token:` wins when both are set) and keeps the
    value; its refresh hook re-reads only credentials that carry an expiry (exec
    plugins, auth providers). A running script never sees a rotated file."""
    first, secret = tokenuser.mint(bound=True)
    tokenuser.install(first)
    py = Background(clients.argv("python", tokenuser.user, tokenuser.kubeconfig, "--every", "2", "--count", "14"))
    try:
        line = py.first_line()
        assert f"status=201 user={WHO}" in line, line
        second, _ = tokenuser.mint()
        tokenuser.install(second)
        tokenuser.revoke(secret)
        out = py.wait(60)
    finally:
        py.stop()
    statuses = [l.split()[3] for l in out.splitlines() if " request " in l]
    # Once the API server's ~10 s authentication cache let go of the revoked
    # token, every request of the running client is refused: it never re-read.
    assert statuses[-1] == "status=401", out
    assert "status=201" not in statuses[statuses.index("status=401"):], out
    # A new process reads the new file.
    who, run = clients.whoami("python", tokenuser.user, tokenuser.kubeconfig)
    assert who == WHO, run.stderr
    tokenuser.home_holds_no_token()


def test_trailing_newline_breaks_only_the_python_client(cluster, clients, tokenuser):
    """kubectl and client-go trim the file; the Python client sends it as read, and
    a header value ending in a newline is refused before it leaves the process.
    Token files must hold the bare token."""
    token, _ = tokenuser.mint()
    tokenuser.install(token, newline=True)
    for client in ("kubectl", "clientgo"):
        who, p = clients.whoami(client, tokenuser.user, tokenuser.kubeconfig)
        assert who == WHO, f"{client}: {p.stderr}"
    who, p = clients.whoami("python", tokenuser.user, tokenuser.kubeconfig)
    assert who is None and "ValueError" in p.stderr, p.stdout + p.stderr
    assert token not in p.stdout + p.stderr


def _switch(cluster, mark, new_jti, since):
    """Seconds from since to the first audit event of the watcher carrying
    new_jti, or None."""
    for stamp, jti, _verb, code in audit_credentials(cluster, mark, "kc-clientgo/watch"):
        if jti == new_jti and code and code < 400:
            return (_utc(stamp) - since).total_seconds()
    return None


def test_clientgo_follows_a_rotated_file(cluster, clients, tokenuser):
    """Rotation with the old token still valid (what `refresh` does at 80 % of the
    lifetime): no request fails, and within about 70 s the program's requests carry
    the new token's jti."""
    first, _ = tokenuser.mint()
    tokenuser.install(first)
    mark = cluster.audit_mark()
    w = Watcher(clients, tokenuser)
    try:
        assert wait_for(lambda: w.requests(), 30), w.stop()
        assert wait_for(lambda: w.saw("watch started"), 10), w.stop()
        cluster.kubectl("-n", NS, "run", f"p{secrets.token_hex(3)}", "--image=busybox", "--restart=Never",
                        "--overrides", '{"spec":{"automountServiceAccountToken":false}}')
        assert wait_for(lambda: w.saw(" event ADDED "), 10), w.stop()
        time.sleep(3)
        second, _ = tokenuser.mint()
        rotated = datetime.datetime.now(datetime.timezone.utc)
        tokenuser.install(second)
        took = wait_for(lambda: _switch(cluster, mark, jwt_claims(second)["jti"], rotated), SWITCH_LIMIT + 5)
        log = w.stop()
    finally:
        w.stop()
    print(f"\nclient-go switched to the rotated token's jti {took:.1f}s after the rename" if took else "")
    assert took is not None and took <= SWITCH_LIMIT, f"no request with the new jti within {SWITCH_LIMIT}s:\n{log}"
    assert all(status == "201" for status, _ in w.requests()), log
    # Before the rotation the program used the first token (the audit log tells them apart).
    jtis = [jti for _s, jti, _v, _c in audit_credentials(cluster, mark, "kc-clientgo/watch")]
    assert jwt_claims(first)["jti"] in jtis
    tokenuser.home_holds_no_token()


def test_clientgo_after_the_old_token_is_revoked(cluster, clients, tokenuser):
    """Rotation and, at once, revocation of the old token. client-go (0.33) does not
    re-read a tokenFile after a 401 (its bearer round tripper has no reset; only the
    50 s age does it): requests are refused from when the API server's ~10 s
    authentication cache lets go until the next re-read, then succeed with the new
    jti, within about 70 s of the rename. The watch stream opened before keeps going."""
    first, secret = tokenuser.mint(bound=True)
    tokenuser.install(first)
    mark = cluster.audit_mark()
    w = Watcher(clients, tokenuser)
    try:
        assert wait_for(lambda: w.requests(), 30), w.stop()
        time.sleep(3)
        second, _ = tokenuser.mint()
        rotated = datetime.datetime.now(datetime.timezone.utc)
        tokenuser.install(second)
        tokenuser.revoke(secret)
        took = wait_for(lambda: _switch(cluster, mark, jwt_claims(second)["jti"], rotated), SWITCH_LIMIT + 5)
        time.sleep(PERIOD + 2)  # one more request after the switch
        log = w.stop()
    finally:
        w.stop()
    refused = [line for status, line in w.requests() if status != "201"]
    print(f"\nclient-go after revocation: {len(refused)} request(s) refused, new jti "
          f"{took:.1f}s after the rename" if took else "")
    assert took is not None and took <= SWITCH_LIMIT, f"no request with the new jti within {SWITCH_LIMIT}s:\n{log}"
    assert all(" status=401 " in line for line in refused), log
    # Refused more than once in a row: a 401 did not make it re-read the file.
    assert len(refused) >= 2, log
    # Recovered: the request that switched and the one after it succeed.
    assert [status for status, _ in w.requests()][-2:] == ["201", "201"], log
    assert "watch ended" not in log, log
    tokenuser.home_holds_no_token()
