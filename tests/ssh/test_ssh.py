"""Tier 5, end to end: a real sshd on a loopback port, under a test PAM service
named by a copy of the sshd binary (OpenSSH < 9.8 takes the service name from
its program name), logging in test users with keys, against the real cluster."""
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import RUN_DIR, STATE_DIR, end_process, run

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class Sshd:
    def __init__(self, installed, config):
        self.service = f"kc-ssh-{secrets.token_hex(4)}"
        self.dir = Path(tempfile.mkdtemp(prefix="kc-sshd.", dir="/usr/local/lib"))
        os.chmod(self.dir, 0o755)
        (self.dir / "keys").mkdir(mode=0o755)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "host_key"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "client_key"])
        binary = self.dir / self.service
        shutil.copy2(SSHD, binary)
        self.pam = Path("/etc/pam.d") / self.service
        self.pam.write_text(
            "auth required pam_permit.so\n"
            "account required pam_permit.so\n"
            "session required pam_permit.so\n"
            f"session optional {installed / 'pam_kubeconfig.so'} helper={installed / 'pam-kubeconfig'} "
            f"config={config}\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.dir / 'host_key'}
PidFile {self.dir / 'sshd.pid'}
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {self.dir / 'keys'}/%u
PermitRootLogin no
MaxStartups 400:30:600
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel ERROR
""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([str(binary), "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                     stderr=open(self.dir / "sshd.log", "w"))
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("sshd did not start: " + (self.dir / "sshd.log").read_text())

    def allow(self, user):
        key = (self.dir / "client_key.pub").read_text()
        (self.dir / "keys" / user).write_text(key)
        os.chmod(self.dir / "keys" / user, 0o644)

    def ssh(self, user, command=None, tty=False, stdin=None, timeout=120):
        cmd = ["ssh", "-i", str(self.dir / "client_key"), "-p", str(self.port), "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if tty:
            cmd.append("-tt")
        cmd.append(f"{user}@127.0.0.1")
        if command:
            cmd.append(command)
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)

    def stop(self):
        end_process(self.proc)
        self.pam.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def setup(cluster, workdir, installed):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    cfg = workdir.write_config("""  - group: kc-ssh-alice
    cluster: test
    serviceaccount: team-a/alice
  - user: "*"
    cluster: test
    serviceaccount: bastion-users/u-{user_safe}
    create: true
    clusterrole: view
""")
    run(["groupadd", "-f", "kc-ssh-alice"])
    sshd = Sshd(installed, cfg)
    yield sshd, cfg
    sshd.stop()


# What a session shows of its kubeconfig: the file KUBECONFIG names first, and
# the token file that file names (the session's user may read it, nobody else).
SHOW = ('f="${KUBECONFIG%%:*}"; cat "$f"; tf=$(sed -n "s/^ *tokenFile: //p" "$f" | head -1); '
        'echo "TOKEN=$(cat "$tf")"')


def token_from(text):
    m = re.search(r"^TOKEN=(\S+)$", text, re.M)
    assert m, text
    return m.group(1)


def test_login_gives_a_working_kubeconfig_and_logout_revokes(cluster, users, setup):
    sshd, _ = setup
    user = users.make(groups=["kc-ssh-alice"])
    sshd.allow(user)
    p = sshd.ssh(user, 'echo "K=$KUBECONFIG"; kubectl auth whoami -o jsonpath="{.status.userInfo.username}"; '
                       'echo; kubectl get pods -n team-a; echo "rc=$?"; ' + SHOW)
    assert p.returncode == 0, p.stderr
    home = Path(f"/home/{user}")
    assert f"K={home}/.kube/config-eks:{home}/.kube/config" in p.stdout
    assert "token:" not in p.stdout  # the kubeconfig holds none
    assert "system:serviceaccount:team-a:alice" in p.stdout
    # The namespace's contents belong to other tests; what matters is that the list is allowed.
    assert "rc=0" in p.stdout and "forbidden" not in p.stderr.lower(), p.stderr
    token = token_from(p.stdout)
    took = cluster.wait_refused(token)
    print(f"\nafter ssh logout the token was refused in {took:.1f}s")
    assert wait_closed(users, user)


def test_login_message_shows_with_a_terminal(users, setup):
    sshd, _ = setup
    user = users.make(groups=["kc-ssh-alice"])
    sshd.allow(user)
    p = sshd.ssh(user, tty=True, stdin="echo KC=$KUBECONFIG; exit\n")
    assert "kubectl: context test as team-a/alice" in p.stdout, p.stdout + p.stderr
    assert f"KC=/home/{user}/.kube/config-eks" in p.stdout


def wait_closed(users, user, limit=60):
    """sshd closes the PAM session after the client has gone: wait for it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (not list((STATE_DIR / str(users.uid(user))).glob("session-*.json"))
                and not list((RUN_DIR / str(users.uid(user))).glob("*.token"))):
            return True
        time.sleep(0.2)
    return False


def _storm(sshd, logins):
    """Each login prints its kubeconfig, then holds the session a moment."""
    def one(user):
        return user, sshd.ssh(user, SHOW + '; echo "=== $(id -un)"; sleep 6', timeout=300)

    with ThreadPoolExecutor(max_workers=len(logins)) as pool:
        futures = [pool.submit(one, u) for u in logins]
        return [f.result() for f in futures]


def test_fifty_distinct_users_at_once(cluster, users, setup):
    sshd, _ = setup
    logins = [users.make(prefix="kcs") for _ in range(50)]
    for u in logins:
        sshd.allow(u)
    results = _storm(sshd, logins)
    failures = [(u, p.returncode, p.stderr[-300:]) for u, p in results if p.returncode != 0 or f"=== {u}" not in p.stdout]
    assert not failures
    for u, p in results:
        assert cluster.whoami(token_from(p.stdout)) in (f"system:serviceaccount:bastion-users:u-{u}", 401)
    for u in logins:
        assert wait_closed(users, u)


def test_fifty_logins_of_one_user_at_once(cluster, users, setup):
    sshd, _ = setup
    user = users.make(groups=["kc-ssh-alice"])
    sshd.allow(user)
    holder = {}

    def watch():
        # While the sessions are held, every one of them has a record.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = len(list((STATE_DIR / str(users.uid(user))).glob("session-*.json")))
            holder["max"] = max(holder.get("max", 0), n)
            if n == 50:
                return
            time.sleep(0.1)

    t = threading.Thread(target=watch)
    t.start()
    results = _storm(sshd, [user] * 50)
    t.join()
    failures = [(p.returncode, p.stderr[-300:]) for _, p in results if p.returncode != 0 or f"=== {user}" not in p.stdout]
    assert not failures
    assert holder["max"] == 50
    tokens = {token_from(p.stdout) for _, p in results}
    assert len(tokens) >= 1
    assert wait_closed(users, user)
    for tok in list(tokens)[:3]:
        cluster.wait_refused(tok)
