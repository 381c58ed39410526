"""Simulated bastions sharing one home: each host is a mount namespace and a
network namespace of its own, in which /run/pam_kubeconfig, /var/lib/pam_kubeconfig
and /var/cache/pam_kubeconfig are bind mounts of directories of that host, while
/home and /etc are the machine's. A host reaches the test cluster over a veth on a
bridge the tests make (kct-br0), at the address the cluster's serving certificate
names for bastions, NATed to the API server on loopback: its sockets, cuts and
nftables are its own, so one host's cut or refusal cannot stand in for another's.
Sessions (the real libpam through the session driver), the helper's timers and
the user's kubectl run inside it through nsenter."""
import itertools
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from conftest import HELPER, RUN_DIR, STATE_DIR, Driver, run
from kubeconfig_checks import kubectl_user, whoami

CACHE_DIR = Path("/var/cache/pam_kubeconfig")
# (the machine's directory, its mode, the host's own copy)
HOST_DIRS = ((RUN_DIR, 0o755, "run"), (STATE_DIR, 0o700, "lib"), (CACHE_DIR, 0o700, "cache"))


BRIDGE = "kct-br0"
NAT_TABLE = "kct-bastions"
_HOST_ADDRS = itertools.count(2)


class Network:
    """The bridge the hosts hang on, with the cluster's bastion address, and the
    NAT that takes that address's API port to the API server on loopback."""

    def __init__(self, cluster):
        self.addr = cluster.env["KUBE_TEST_BASTION_ADDR"]
        self.port = cluster.server.rsplit(":", 1)[1]
        self.server = f"https://{self.addr}:{self.port}"
        run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=False)
        run(["ip", "addr", "replace", f"{self.addr}/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        # Packets from the bridge may be routed to 127.0.0.1 once NATed there.
        run(["sysctl", "-qw", f"net.ipv4.conf.{BRIDGE}.route_localnet=1"])
        run(["nft", "delete", "table", "ip", NAT_TABLE], check=False)
        run(["nft", "-f", "-"], input=(
            f"add table ip {NAT_TABLE}\n"
            f"add chain ip {NAT_TABLE} pre {{ type nat hook prerouting priority -100; }}\n"
            f"add rule ip {NAT_TABLE} pre iifname {BRIDGE} ip daddr {self.addr} tcp dport {self.port} "
            f"dnat to 127.0.0.1:{self.port}\n"))

    def close(self):
        run(["nft", "delete", "table", "ip", NAT_TABLE], check=False)
        run(["ip", "link", "del", BRIDGE], check=False)


class Host:
    def __init__(self, name, base, config, service, network):
        self.name = name
        self.config = config
        self.service = service
        self.root = Path(base) / name
        self.netns = f"kcb-{name}-{secrets.token_hex(3)}"
        veth = f"kcv{secrets.token_hex(4)}"
        addr = f"{network.addr.rsplit('.', 1)[0]}.{next(_HOST_ADDRS)}"
        run(["ip", "netns", "add", self.netns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
        run(["ip", "-n", self.netns, "addr", "add", f"{addr}/24", "dev", "eth0"])
        run(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        script = []
        for real, mode, own in HOST_DIRS:
            real.mkdir(mode=mode, parents=True, exist_ok=True)
            d = self.root / own
            d.mkdir(parents=True)
            os.chmod(d, mode)
            script.append(f"mount --bind {d} {real}")
        # The namespace lives while this process (and whatever entered it) does.
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             " && ".join(script) + " && echo ready && exec sleep 3600"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self.holder.stdout.readline()
        if ready.strip() != "ready":
            raise AssertionError(f"host {name}: {self.holder.communicate(timeout=10)}")
        # The holder is `ip netns exec`'s child once it execs; its namespaces are the host's.
        self.ns = ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--"]
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
        run(["ip", "netns", "del", self.netns], check=False)  # its veth goes with it
        shutil.rmtree(self.root, ignore_errors=True)
