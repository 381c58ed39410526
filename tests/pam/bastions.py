"""Simulated bastions sharing one home: each host is a mount namespace of its own
(unshare -m) in which /run/pam_kubeconfig, /var/lib/pam_kubeconfig and
/var/cache/pam_kubeconfig are bind mounts of directories of that host, while
/home, /etc and the network are the machine's. Sessions (the real libpam through
the session driver), the helper's timers and the user's kubectl run inside it
through nsenter."""
import os
import shutil
import subprocess
from pathlib import Path

from conftest import HELPER, RUN_DIR, STATE_DIR, Driver, run
from kubeconfig_checks import kubectl_user, whoami

CACHE_DIR = Path("/var/cache/pam_kubeconfig")
# (the machine's directory, its mode, the host's own copy)
HOST_DIRS = ((RUN_DIR, 0o755, "run"), (STATE_DIR, 0o700, "lib"), (CACHE_DIR, 0o700, "cache"))


class Host:
    def __init__(self, name, base, config, service):
        self.name = name
        self.config = config
        self.service = service
        self.root = Path(base) / name
        script = []
        for real, mode, own in HOST_DIRS:
            real.mkdir(mode=mode, parents=True, exist_ok=True)
            d = self.root / own
            d.mkdir(parents=True)
            os.chmod(d, mode)
            script.append(f"mount --bind {d} {real}")
        # The namespace lives while this process (and whatever entered it) does.
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             " && ".join(script) + " && echo ready && exec sleep 3600"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self.holder.stdout.readline()
        if ready.strip() != "ready":
            raise AssertionError(f"host {name}: {self.holder.communicate(timeout=10)}")
        self.ns = ["nsenter", "-t", str(self.holder.pid), "-m", "--"]
        self.sessions = []

    def login(self, user):
        s = Driver(self.service, user, prefix=self.ns)
        assert s.open_rc == 0, f"login on {self.name}: {s.lines}"
        self.sessions.append(s)
        return s

    def logout(self, s):
        assert s.close() == ["close 0 Success"], f"logout on {self.name}: {s.lines}"
        self.sessions.remove(s)

    def helper(self, command, *args, check=True):
        return run([*self.ns, HELPER, command, "--config", self.config, *args], check=check)

    def rotate(self, user):
        return self.helper("refresh", "--now", user)

    def token_file(self, uid, cluster="test"):
        """The host's own token file for uid, seen from outside its namespace."""
        return self.root / "run" / str(uid) / f"{cluster}.token"

    def token(self, uid):
        p = self.token_file(uid)
        return p.read_text().strip() if p.exists() else None

    def kubectl(self, user, *args):
        return kubectl_user(user, *args, prefix=self.ns)

    def whoami(self, user):
        return whoami(user, prefix=self.ns)

    def close(self):
        for s in list(self.sessions):
            s.close()
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        shutil.rmtree(self.root, ignore_errors=True)
