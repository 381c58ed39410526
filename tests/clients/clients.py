"""The real clients of the token-file tests (kubectl, the client-go program
kc-clientgo, the Python `kubernetes` client), ready to run as a test user, and
what the tests do around them: kubeconfigs that name a tokenFile, token files
written and rotated the way the helper writes them, JWT claims, audit events."""
import base64
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def _built(what):
    p = subprocess.run([str(BUILD), what], capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise AssertionError(f"tests/clients/build {what} failed:\n{p.stderr}")
    return p.stdout.strip().splitlines()[-1]


class Clients:
    """Copies of the clients in a root-owned directory every user can enter
    (the client-go binary is cached in root's home, which a test user cannot)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="kc-clients."))
        os.chmod(self.dir, 0o755)
        self.clientgo = self.dir / "kc-clientgo"
        shutil.copy(_built("clientgo"), self.clientgo)
        os.chmod(self.clientgo, 0o755)
        self.python = _built("python")
        self.pyclient = self.dir / "pyclient.py"
        shutil.copy(HERE / "pyclient.py", self.pyclient)
        os.chmod(self.pyclient, 0o644)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def user_env(user, kubeconfig):
        home = pwd.getpwnam(user).pw_dir
        return ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={home}", f"USER={user}",
                f"KUBECONFIG={kubeconfig}"]

    def argv(self, client, user, kubeconfig, *args):
        """The command line running client ("kubectl", "clientgo", "python") as user."""
        tool = {"kubectl": [shutil.which("kubectl")], "clientgo": [str(self.clientgo)],
                "python": [self.python, str(self.pyclient)]}[client]
        return ["runuser", "-u", user, "--", *self.user_env(user, kubeconfig), *tool, *args]

    def run(self, client, user, kubeconfig, *args, timeout=60):
        return subprocess.run(self.argv(client, user, kubeconfig, *args), capture_output=True, text=True,
                              timeout=timeout)

    def whoami(self, client, user, kubeconfig):
        """(username or None, the run) as the client sees itself."""
        args = {"kubectl": ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
                "clientgo": ["whoami"], "python": []}[client]
        p = self.run(client, user, kubeconfig, *args)
        return (p.stdout.strip() if p.returncode == 0 else None), p


def kubeconfig_text(server, ca_file, token_file, name="kc-test"):
    """A kubeconfig whose user names a tokenFile and holds no secret."""
    return (f"apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority: {ca_file}\n"
            f"users:\n- name: {name}\n  user:\n    tokenFile: {token_file}\n"
            f"contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
            f"current-context: {name}\n")


def write_token(directory, name, token, uid, newline=False):
    """Writes directory/name as root does it: a temporary in the same root-owned
    directory, fchown to the user, fchmod 0400, rename over the old file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        os.write(fd, (token + ("\n" if newline else "")).encode())
        os.fchown(fd, uid, -1)
        os.fchmod(fd, 0o400)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, Path(directory) / name)


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def mint(cluster, namespace, sa, duration="1h", secret=None):
    """A token for namespace/sa from `kubectl create token` (admin), bound to a
    Secret when given so that deleting the Secret revokes it."""
    args = ["-n", namespace, "create", "token", sa, f"--duration={duration}"]
    if secret:
        args += ["--bound-object-kind", "Secret", "--bound-object-name", secret]
    return cluster.kubectl(*args).stdout.strip()


def audit_credentials(cluster, since_line, agent):
    """[(monotonic-free wall time, jti, verb, code)] of the audit events from a
    user agent that starts with agent, after since_line."""
    out = []
    for ev in cluster.audit_events(since_line):
        if not ev.get("userAgent", "").startswith(agent):
            continue
        cred = (ev.get("user", {}).get("extra", {}) or {}).get(CREDENTIAL_ID, [""])[0]
        out.append((ev.get("requestReceivedTimestamp"), cred.removeprefix("JTI="), ev.get("verb"),
                    ev.get("responseStatus", {}).get("code")))
    return out


def wait_for(pred, limit, step=0.5):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None
