"""What every part of make bench shares: processes timed, throwaway users,
configs and PAM services, the targets and the cleanup list (bench/run)."""
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench's one path setup: tests/ (conftest, certs), for benchlib and for what imports it
# (bench/run, bench/lifecycle.py). pytest gets its path from pytest.ini instead.
sys.path.insert(0, str(REPO / "tests"))
from conftest import Cluster  # noqa: E402,F401  (bench/run's setup uses it)

B = REPO / os.environ.get("B", "build")
HELPER, MODULE, DRIVER = B / "pam-kubeconfig", B / "pam_kubeconfig.so", B / "tests/kc-session-driver"
CPU_BENCH, SOCKCUT = B / "bench/cpu_bench", B / "tests/kc-sockcut"
RUNS = int(os.environ.get("BENCH_RUNS", "50"))
STATE_DIR, RUN_DIR = Path("/var/lib/pam_kubeconfig"), Path("/run/pam_kubeconfig")
results, targets, cleanup = [], [], []


class Floor:
    """The floor of a login and a logout: one curl process sending the same
    requests (create the revocation Secret, then the TokenRequest bound to it,
    on one connection; DELETE the Secret), TLS verified against the same CA."""

    def __init__(self, cluster, work, fleet=None, server=None):
        self.fleet = fleet  # with fleet: the lock's GET by name first, on the same connection
        self.hdr = work / "curl-headers"
        self.hdr.write_text(f"Authorization: Bearer {cluster.minter_token()}\nContent-Type: application/json\n")
        os.chmod(self.hdr, 0o600)
        cleanup.append(lambda: self.hdr.unlink(missing_ok=True))
        self.base = server or cluster.server
        self.common = ["-s", "-o", "/dev/null", "--cacert", work / "ca.pem", "-H", f"@{self.hdr}"]

    def open_cmd(self):
        self.name = f"pam-kubeconfig-floor{secrets.token_hex(4)}"
        secret = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": self.name}})
        token = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": {"expirationSeconds": 28800,
                                     "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": self.name}}})
        lock = [*self.common, f"{self.base}/api/v1/namespaces/{self.fleet}/configmaps/lock-floor", "--next"] \
            if self.fleet else []
        return ["curl", *lock, *self.common, "-X", "POST", "-d", secret, f"{self.base}/api/v1/namespaces/team-a/secrets",
                "--next", *self.common, "-X", "POST", "-d", token,
                f"{self.base}/api/v1/namespaces/team-a/serviceaccounts/alice/token"]

    def open(self):
        w, _, rc, *_ = timed(self.open_cmd())
        assert rc == 0
        return w

    def close(self):
        w, r, rc, *_ = timed(["curl", *self.common, "-X", "DELETE",
                              f"{self.base}/api/v1/namespaces/team-a/secrets/{self.name}"])
        assert rc == 0
        return w


def sh(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def timed(cmd, env=None, stdin=None):
    """Wall seconds and peak RSS (KiB) of one process (and the children it reaped)."""
    start = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env)
    # Both streams read side by side (communicate): a process that fills its
    # stderr pipe while we wait for its stdout's end would wait for ever.
    out, err = _drain(p, stdin.encode() if stdin else None)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return wall, ru.ru_maxrss, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), ru


def _drain(p, data):
    """Popen.communicate() without its wait (wait4 takes the rusage)."""
    import selectors
    chunks = {p.stdout: [], p.stderr: []}
    if data is not None:
        p.stdin.write(data)
        p.stdin.close()
    with selectors.DefaultSelector() as sel:
        for f in chunks:
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                chunk = os.read(key.fd, 65536)
                if chunk:
                    chunks[key.fileobj].append(chunk)
                else:
                    sel.unregister(key.fileobj)
    return b"".join(chunks[p.stdout]), b"".join(chunks[p.stderr])


def peak_rss(cmd):
    """The peak RSS (KiB) of one run of cmd (and of the children it reaped).
    Not from our own wait4: a process forked from this Python one keeps
    Python's high-water mark (~50 MiB) across its exec, whatever it runs. GNU
    time forks it from a process of ~1 MiB."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as f:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name, *[str(c) for c in cmd]],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return int(f.read().split()[-1])


def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "p95": xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))],
            "n": len(xs)}


def ms(x):
    return f"{x * 1000:.1f} ms"


def target(name, ok, detail):
    targets.append((name, ok, detail))
    print(f"  target {'met' if ok else 'MISSED'}: {name}: {detail}")



def make_user(prefix="kcb", groups=()):
    name = f"{prefix}{secrets.token_hex(3)}"
    sh(["useradd", "-m", "-s", "/bin/bash"] + (["-G", ",".join(groups)] if groups else []) + [name], check=True)

    def rm():
        uid = sh(["id", "-u", name]).stdout.strip()
        sh(["userdel", "-r", "-f", name])
        if uid:
            shutil.rmtree(STATE_DIR / uid, ignore_errors=True)
            shutil.rmtree(RUN_DIR / uid, ignore_errors=True)
    cleanup.append(rm)
    return name


def cluster_entry(work, cluster, name="test", server=None):
    return (f"  - name: {name}\n    server: {server or cluster.server}\n    certificate_authority: {work}/ca.pem\n"
            f"    auth:\n      token_file: {work}/minter.token\n")


def write_config(work, cluster, mappings, name="config.yaml", clusters=None):
    path = work / name
    path.write_text("clusters:\n" + (clusters or cluster_entry(work, cluster)) + "mappings:\n" + mappings)
    os.chmod(path, 0o644)
    return path


def rules(n, user, cluster="test"):
    """n user rules, the user's own last (a large organisation lists users one by one)."""
    out = [f"  - user: other{i}\n    cluster: {cluster}\n    serviceaccount: team-a/alice\n" for i in range(n - 1)]
    out.append(f"  - user: {user}\n    cluster: {cluster}\n    serviceaccount: team-a/alice\n")
    return "".join(out)


def pam_calls(cluster, mark):
    return [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]



def pam_service(work, cfg, with_module, timeout=None):
    name = f"kc-bench-{secrets.token_hex(3)}"
    path = Path("/etc/pam.d") / name
    line = (f"session required {work}/pam_kubeconfig.so helper={work}/pam-kubeconfig config={cfg}"
            + (f" timeout={timeout}" if timeout else "") + "\n") if with_module else ""
    path.write_text(line + "session required pam_permit.so\n")
    cleanup.append(lambda: path.unlink(missing_ok=True))
    return name



class Relays:
    """Distinct endpoints for one API server: n loopback ports, each forwarded
    by the kernel (nftables DNAT in the output hook) to the test API server's
    port. A client cannot share one connection between two of them, so clusters
    behind them cost what distinct clusters cost; the forwarding itself is in
    the kernel, so it adds nothing a process could be blamed for."""

    def __init__(self, cluster, n):
        host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
        assert host == "127.0.0.1", cluster.server
        self.table = f"kcbench{secrets.token_hex(3)}"
        self.ports = free_ports(n)
        rules = "\n".join(f"    tcp dport {p} dnat ip to 127.0.0.1:{port}" for p in self.ports)
        script = (f"table ip {self.table} {{\n  chain out {{\n    type nat hook output priority -100;\n"
                  f"    ip daddr != 127.0.0.1 return\n{rules}\n  }}\n}}\n")
        p = sh(["nft", "-f", "-"], input=script)
        assert p.returncode == 0, p.stderr
        cleanup.append(self.close)
        self.servers = [f"https://127.0.0.1:{p}" for p in self.ports]

    def close(self):
        sh(["nft", "delete", "table", "ip", self.table])


def free_ports(n):
    """n distinct loopback ports nothing listens on now (held bound while chosen)."""
    import socket
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
