"""Shared fixtures for the integration tiers: the real test cluster, the built
helper installed where the module accepts it, unique throwaway users, configs,
and a syslog listener on /dev/log (these machines run no syslog daemon)."""
import atexit
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / os.environ.get("B", "build")
HELPER = BUILD / "pam-kubeconfig"
MODULE = BUILD / "pam_kubeconfig.so"
DRIVER = BUILD / "tests" / "kc-session-driver"
STATE_DIR = Path("/var/lib/pam_kubeconfig")
RUN_DIR = Path("/run/pam_kubeconfig")
SAN = os.environ.get("SAN") == "1"
# Uninstrumented programs that load our ASan-built module need the runtime first.
ASAN_PRELOAD = (subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
                if SAN else None)


def preload_env():
    env = dict(os.environ)
    if ASAN_PRELOAD:
        env["LD_PRELOAD"] = ASAN_PRELOAD
    return env


# ---- the security case table (docs/SECURITY.md is produced from a full run) ----

SECURITY_RESULTS = []


def security(description):
    """Marks a test as covering a case of the threat model in docs/SECURITY.md."""
    return pytest.mark.security(description)


def pytest_configure(config):
    config.addinivalue_line("markers", "security(case): a hardening case reported in docs/SECURITY.md")


def pytest_runtest_makereport(item, call):
    marker = item.get_closest_marker("security")
    if marker and call.when == "call":
        outcome = "passed" if call.excinfo is None else "FAILED"
        SECURITY_RESULTS.append((marker.args[0], item.nodeid, outcome))


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("KC_SECURITY_DOC")
    if not out or not SECURITY_RESULTS:
        return
    head = (REPO / "docs" / "SECURITY.md.in").read_text()
    rows = ["| case | test | result |", "|---|---|---|"]
    for case, nodeid, outcome in SECURITY_RESULTS:
        rows.append(f"| {case} | `{nodeid}` | {outcome} |")
    passed = sum(1 for r in SECURITY_RESULTS if r[2] == "passed")
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    Path(out).write_text(head + f"\n## Cases ({passed} of {len(SECURITY_RESULTS)} passed, `make test`, {stamp})\n\n"
                         + "\n".join(rows) + "\n")


def run(cmd, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    p = subprocess.run([str(c) for c in cmd], **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class Cluster:
    def __init__(self, env):
        self.env = env
        self.server = env["KUBE_TEST_SERVER"]
        self.ca_file = env["KUBE_TEST_CA_FILE"]
        self.admin_kubeconfig = env["KUBE_TEST_ADMIN_KUBECONFIG"]
        self.minter_token_file = env["KUBE_TEST_MINTER_TOKEN_FILE"]
        self.audit_log = Path(env["KUBE_TEST_AUDIT_LOG"])
        self.ssl = ssl.create_default_context(cafile=self.ca_file)

    def kubectl(self, *args, check=True, **kw):
        return run(["kubectl", "--kubeconfig", self.admin_kubeconfig, *args], check=check, **kw)

    def minter_token(self):
        return Path(self.minter_token_file).read_text().strip()

    def request(self, method, path, token, body=None, timeout=10):
        """One API call with a bearer token (never in argv). Returns (status, json)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def whoami(self, token):
        """The username a token authenticates as, or the HTTP status when refused."""
        status, body = self.request(
            "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        if status == 201:
            return body["status"]["userInfo"]["username"]
        return status

    def wait_refused(self, token, limit=60):
        """Polls until the token is refused (the API server caches successful
        authentications for ~10 s). Returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            if self.whoami(token) == 401:
                return time.monotonic() - start
            time.sleep(0.5)
        raise AssertionError(f"token still accepted after {limit}s")

    def ensure_namespace(self, ns):
        self.kubectl("create", "namespace", ns, check=False)

    def ensure_sa(self, ns, name, clusterrole=None):
        self.ensure_namespace(ns)
        self.kubectl("-n", ns, "create", "serviceaccount", name, check=False)
        if clusterrole:
            self.kubectl("-n", ns, "create", "rolebinding", f"{name}-{clusterrole}",
                         f"--clusterrole={clusterrole}", f"--serviceaccount={ns}:{name}", check=False)

    def audit_events(self, since_line=0):
        lines = self.audit_log.read_text().splitlines()
        return [json.loads(l) for l in lines[since_line:] if l.strip()]

    def audit_mark(self):
        return len(self.audit_log.read_text().splitlines())


@pytest.fixture(scope="session", autouse=True)
def leave_no_state():
    """What the suite added under the product's state and cache directories goes
    again at the end (each test removes its own users' records as well)."""
    dirs = [STATE_DIR, Path("/var/cache/pam_kubeconfig"), RUN_DIR]
    before = {d: set(os.listdir(d)) if d.exists() else None for d in dirs}
    yield
    for d, had in before.items():
        if not d.exists():
            continue
        for name in set(os.listdir(d)) - (had or set()):
            p = d / name
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        if had is None:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster():
    env_file = REPO / "build" / "test-cluster" / "env"
    if not env_file.exists():
        run([REPO / "tests" / "cluster" / "up"], timeout=1800)
    env = {}
    for line in env_file.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return Cluster(env)


@pytest.fixture(scope="session")
def installed():
    """The built helper and module in a root-owned directory the module's
    safe-path check accepts (/tmp is world-writable: refused)."""
    base = Path("/usr/local/lib")
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="kc-test.", dir=base))
    os.chmod(d, 0o755)
    for src in (HELPER, MODULE):
        shutil.copy2(src, d / src.name)
        os.chmod(d / src.name, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Workdir:
    """A root-owned directory with a config, the CA and the minter's token."""

    def __init__(self, path, cluster):
        self.path = path
        self.cluster = cluster
        self.ca = path / "ca.pem"
        self.token = path / "minter.token"
        shutil.copy(cluster.ca_file, self.ca)
        os.chmod(self.ca, 0o644)
        self.token.write_text(cluster.minter_token() + "\n")
        os.chmod(self.token, 0o600)
        self.config = path / "config.yaml"

    def write_config(self, mappings, clusters=None, extra=""):
        if clusters is None:
            clusters = [self.cluster_entry("test")]
        text = extra + "clusters:\n" + "".join(clusters) + "mappings:\n" + mappings
        self.config.write_text(text)
        os.chmod(self.config, 0o644)
        return self.config

    def alice_config(self, user, server=None, extra=""):
        """A config mapping user to team-a/alice (a ServiceAccount the minter's
        manifest names), which exists with view."""
        self.cluster.ensure_sa("team-a", "alice", clusterrole="view")
        return self.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: team-a/alice\n",
                                 clusters=[self.cluster_entry("test", server=server)], extra=extra)

    def cluster_entry(self, name, server=None, token=None, extra=""):
        return (f"  - name: {name}\n"
                f"    server: {server or self.cluster.server}\n"
                f"    certificate_authority: {self.ca}\n"
                f"{extra}"
                f"    auth:\n"
                f"      token_file: {token or self.token}\n")


def _health_marks():
    cache = Path("/var/cache/pam_kubeconfig")
    return set(cache.glob("down-*")) if cache.exists() else set()


@pytest.fixture
def workdir(cluster):
    d = Path(tempfile.mkdtemp(prefix="kc-work."))
    os.chmod(d, 0o755)
    marks = _health_marks()
    yield Workdir(d, cluster)
    shutil.rmtree(d, ignore_errors=True)
    # A cluster this test saw fail must not be skipped by the next test, whose
    # stand-in may get the same loopback port.
    for m in _health_marks() - marks:
        m.unlink(missing_ok=True)


def second_cuts(uids):
    """argv of the helper's detached second cuts (`pam-kubeconfig cut UID ...`) naming any of uids."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            argv = [a.decode() for a in (d / "cmdline").read_bytes().split(b"\0") if a]
        except (OSError, UnicodeDecodeError):
            continue
        if argv[:2] == ["pam-kubeconfig", "cut"] and set(argv[2:]) & set(uids):
            found.append(argv)
    return found


def fresh_uid():
    """A uid no account has and no test of this run had: a uid reused meets
    what its last owner left (a refusal of its connections, a second cut, records),
    which a test asks for by name (usermod -u), never by chance."""
    while True:
        uid = _UIDS["next"]
        _UIDS["next"] += 1
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


# Each run starts at its own place in a range useradd's default allocation does not reach.
_UIDS = {"next": 30000 + secrets.randbelow(400) * 50}


class Users:
    def __init__(self):
        self.created = []
        self.groups = []

    def make(self, prefix="kct", groups=(), name=None):
        name = name or f"{prefix}{secrets.token_hex(3)}"
        for g in groups:
            try:
                grp.getgrnam(g)
            except KeyError:
                run(["groupadd", g])
                self.groups.append(g)
        cmd = ["useradd", "-m", "-s", "/bin/bash", "-u", str(fresh_uid())]
        if groups:
            cmd += ["-G", ",".join(groups)]
        run(cmd + [name])
        self.created.append(name)
        return name

    def uid(self, name):
        return pwd.getpwnam(name).pw_uid

    def home(self, name):
        return Path(pwd.getpwnam(name).pw_dir)

    def cleanup(self):
        for name in self.created:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            # What the test left running as the user (a writer it stopped) goes first.
            for pid in pids_of_uid(uid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run(["userdel", "-r", "-f", name], check=False)
            shutil.rmtree(STATE_DIR / str(uid), ignore_errors=True)
            shutil.rmtree(RUN_DIR / str(uid), ignore_errors=True)
        for g in self.groups:
            run(["groupdel", g], check=False)


@pytest.fixture
def users():
    u = Users()
    yield u
    u.cleanup()


def helper(*args, check=False, **kw):
    return run([HELPER, *args], check=check, **kw)


def kubeconfig_of(users, name):
    return users.home(name) / ".kube" / "config-eks"


def token_path(users, name, cluster="test"):
    """Where the user's token for a cluster lives: a root-owned directory under /run."""
    return RUN_DIR / str(users.uid(name)) / f"{cluster}.token"


def user_token(users, name, cluster="test"):
    """The user's current token for a cluster (read as root)."""
    return token_path(users, name, cluster).read_text().strip()


def assert_no_token_left(users, name, cluster="test"):
    """After the last logout: no token file, and no token in the kubeconfig."""
    assert not token_path(users, name, cluster).exists()
    kc = kubeconfig_of(users, name)
    if kc.exists():
        assert "token:" not in kc.read_text(), kc.read_text()


def token_in(path):
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith("token:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise AssertionError(f"no token in {path}")


def kubectl_as(user, kubeconfig, *args, check=False):
    return run(["runuser", "-u", user, "--", "env", f"KUBECONFIG={kubeconfig}", "HOME=" + pwd.getpwnam(user).pw_dir,
                "kubectl", *args], check=check)


# ---- programs running beside a test ----

def end_process(p, grace=10):
    """SIGTERM to a process the test started, SIGKILL when it has not exited
    within grace seconds; reaped either way."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Background:
    """A program running beside the test (a watch, a client, a stand-in server):
    its output, stdout and stderr together, collected by a thread as it comes, a
    line at a time with the monotonic time it came. stdin is /dev/null unless
    popen says otherwise."""

    def __init__(self, argv, **popen):
        popen.setdefault("stdin", subprocess.DEVNULL)
        self.p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, **popen)
        self.timed_lines = []  # [(monotonic time, line)]
        self._ended = False
        self._came = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            with self._came:
                self.timed_lines.append((time.monotonic(), line.rstrip("\n")))
                self._came.notify_all()
        with self._came:
            self._ended = True
            self._came.notify_all()

    @property
    def lines(self):
        return [line for _, line in list(self.timed_lines)]

    def saw(self, text):
        return any(text in line for line in self.lines)

    def count(self, text):
        return sum(text in line for line in self.lines)

    def text(self):
        return "\n".join(self.lines)

    def first_line(self, timeout=None):
        """The first line of output, waited for; "" when the output ended (or
        timeout passed) without one."""
        with self._came:
            self._came.wait_for(lambda: self.timed_lines or self._ended, timeout)
            return self.timed_lines[0][1] if self.timed_lines else ""

    def wait(self, timeout):
        """Waits for the program to exit (subprocess.TimeoutExpired past timeout)
        and for the rest of its output; returns all of it."""
        self.p.wait(timeout=timeout)
        self.thread.join(timeout)
        return self.text()

    def stop(self):
        """Ends the program (end_process) and returns its output."""
        end_process(self.p)
        self.thread.join(timeout=5)
        return self.text()


@pytest.fixture(scope="module")
def clients():
    """The real clients of the token-file tests, ready to run as a test user
    (tests/clients/clients.py)."""
    from clients import Clients
    c = Clients()
    yield c
    c.close()


_USER_COPIES = {}


def user_runnable(path):
    """A copy of the test script at path that every test user can read, in a
    directory of its own (0755, removed at exit): the clone itself may sit
    where they cannot, under /root."""
    path = Path(path)
    if path not in _USER_COPIES:
        d = Path(tempfile.mkdtemp(prefix="kc-scripts."))
        d.chmod(0o755)
        shutil.copy(path, d / path.name)
        (d / path.name).chmod(0o644)
        atexit.register(shutil.rmtree, d, True)
        _USER_COPIES[path] = d / path.name
    return _USER_COPIES[path]


def _remove_stale_socket(path):
    """A run killed before its teardown leaves /dev/log bound with nobody
    reading it; the next run's listener takes its place. A socket somebody
    still reads, or anything that is not a socket, is left alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    finally:
        probe.close()


class Syslog:
    """A datagram listener on /dev/log that keeps every line."""

    def __init__(self):
        self.path = "/dev/log"
        _remove_stale_socket(self.path)
        if os.path.exists(self.path) or os.path.islink(self.path):
            raise RuntimeError("/dev/log exists and a syslog daemon listens on it; these tests need to bind it")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.lines = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.lines.append(data.decode(errors="replace"))

    def text(self):
        time.sleep(0.2)
        with self.lock:
            return "\n".join(self.lines)

    def clear(self):
        with self.lock:
            self.lines.clear()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture(scope="session")
def syslog():
    s = Syslog()
    yield s
    s.close()


@pytest.fixture
def pam_service(installed):
    """Writes a uniquely named /etc/pam.d service; removed after."""
    made = []

    def make(module_args="", control="optional", extra_before="", extra_after="session required pam_permit.so\n"):
        name = f"kc-test-{secrets.token_hex(4)}"
        path = Path("/etc/pam.d") / name
        path.write_text(
            extra_before
            + f"session {control} {installed / 'pam_kubeconfig.so'} helper={installed / 'pam-kubeconfig'} {module_args}\n"
            + extra_after)
        made.append(path)
        return name

    yield make
    for p in made:
        p.unlink(missing_ok=True)


def file_mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class Proxy:
    """A loopback TCP proxy in front of the API server whose behaviour a test
    switches: "forward", "down" (nothing listens: refused) or "blackhole"
    (accepts and never answers). TLS passes through untouched."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.mode = "forward"
        self.held = []
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener = None
        self.lock = threading.Lock()
        self._listen()

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(256)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            if self.mode == "blackhole":
                with self.lock:
                    self.held.append(conn)
                continue
            try:
                up = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def server(self):
        return f"https://127.0.0.1:{self.port}"

    def set(self, mode):
        if mode == "down" and self.listener:
            # close() alone leaves a socket listening while accept() blocks on it
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        elif mode != "down" and not self.listener:
            self._listen()
        self.mode = mode

    def close(self):
        self.set("down")
        with self.lock:
            for c in self.held:
                c.close()


@pytest.fixture
def proxy(cluster):
    host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
    p = Proxy(host, int(port))
    yield p
    p.close()


class Driver:
    """kc-session-driver holding a session open until told to close it. prefix: a
    command to run it under (nsenter into a simulated host's namespace)."""

    def __init__(self, service, user, *flags, prefix=()):
        self.p = subprocess.Popen([*prefix, str(DRIVER), "--hold", *flags, service, user], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.lines = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith("READY") or (line.startswith("open ") and not line.startswith("open 0 ")):
                break
        opened = [l for l in self.lines if l.startswith("open ")]
        self.open_rc = int(opened[0].split()[1]) if opened else None  # None: the driver said nothing

    @property
    def env(self):
        return dict(l[4:].split("=", 1) for l in self.lines if l.startswith("ENV "))

    @property
    def infos(self):
        return [l[len("INFO "):] for l in self.lines if l.startswith("INFO ")]

    def close(self):
        if self.p.poll() is None:
            out, _ = self.p.communicate("close\n", timeout=60)
            self.lines += out.splitlines()
        return [l for l in self.lines if l.startswith("close ")]


def driver_once(service, user, *flags, timeout=60):
    """One open+close back to back; returns (rc, lines, seconds)."""
    start = time.monotonic()
    p = run([DRIVER, *flags, service, user], check=False, timeout=timeout)
    lines = p.stdout.splitlines()
    rc = int(next(l for l in lines if l.startswith("open ")).split()[1])
    return rc, lines, time.monotonic() - start


# ---- the lifecycle contract (issue 11): token files, deadlines, the API server's view ----

TOKEN_DIR = Path("/run/pam_kubeconfig")


def token_of_context(kubeconfig, context):
    """The inline token of one context's user in a kubeconfig, or None."""
    import yaml
    try:
        doc = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    ctx = next((c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == context), {})
    user = ctx.get("user", context)
    for u in doc.get("users") or []:
        if u.get("name") == user:
            return (u.get("user") or {}).get("token")
    return None


def current_token(users, user, cluster="test", root=Path("/"), missing_ok=False):
    """The user's current token for a cluster: the token file
    (/run/pam_kubeconfig/<uid>/<cluster>.token) when it exists, else the token
    inline in ~/.kube/config-eks (the first version's format). root: where the
    host's /run is seen from (a schedule's private mount namespace)."""
    uid = users.uid(user) if hasattr(users, "uid") else users
    path = Path(root) / TOKEN_DIR.relative_to("/") / str(uid) / f"{cluster}.token"
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        pass
    home = users.home(user) if hasattr(users, "home") else Path(pwd.getpwnam(user).pw_dir)
    token = token_of_context(home / ".kube" / "config-eks", cluster)
    if token is None and not missing_ok:
        raise AssertionError(f"user {user} has no token for cluster {cluster}: neither {path} "
                             f"nor a token in {home}/.kube/config-eks")
    return token


def pids_of_uid(uid):
    """Every process whose real uid is uid (scanning /proc/*/status Uid:)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            out.append(int(p))
                        break
        except (OSError, ValueError):
            pass
    return out


_USAGE = {}


def need_helper_options(*options):
    """Fails the test unless the built helper's usage names every one of options.
    A test names the options it needs: on a helper without one it fails, it never
    runs on without the option."""
    if "text" not in _USAGE:
        p = subprocess.run([str(HELPER), "--help"], capture_output=True, text=True, timeout=30)
        _USAGE["text"] = p.stdout + p.stderr
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", _USAGE["text"])]
    if missing:
        pytest.fail(f"{HELPER} lacks {', '.join(missing)} (its usage names no such option), which this test needs:\n"
                    f"{_USAGE['text']}", pytrace=False)


class Bounded:
    def __init__(self, rc, took, out, err, killed):
        self.returncode, self.took, self.stdout, self.stderr, self.killed = rc, took, out, err, killed

    def __repr__(self):
        return (f"rc={self.returncode} took={self.took:.2f}s killed={self.killed}\n"
                f"stderr: {self.stderr[-2000:]}")


def run_bounded(args, deadline_ms, hard_s=None, prefix=(), now_user=None):
    """Runs `pam-kubeconfig ARGS --deadline MS [--now USER]` in its own process
    group; past hard_s (default: the deadline plus 5 s) the whole group is
    killed, as systemd's TimeoutStartSec= would. The test fails on a helper
    without those options. prefix: a command to run it under (nsenter into a
    schedule's namespace)."""
    cmd = [*prefix, str(HELPER), *args, "--deadline", str(int(deadline_ms))]
    if now_user:
        cmd += ["--now", now_user]
    need_helper_options("--deadline", *(["--now"] if now_user else []))
    hard_s = hard_s if hard_s is not None else deadline_ms / 1000 + 5
    start = time.monotonic()
    p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = False
    try:
        out, err = p.communicate(timeout=hard_s)
    except subprocess.TimeoutExpired:
        killed = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
    return Bounded(p.returncode, time.monotonic() - start, out, err, killed)


STOPPER = r"""
import os, signal, sys, time
me, uid, period, tester = os.getpid(), os.getuid(), float(sys.argv[1]), sys.argv[2]
ready, seen, spared, first = False, set(), set(), {}
while True:
    now = time.monotonic()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me or p in spared:
            continue
        # A process of root's may become the user's (the writer drops right after
        # its fork): look at a new one for a while, then only at the user's own.
        if now - first.setdefault(p, now) > 0.5 and p not in seen:
            continue
        try:
            with open(f"/proc/{p}/status") as f:
                text = f.read(2048)
            state = text.split("State:", 1)[1].split()[0]
            if state == "Z" or int(text.split("Uid:", 1)[1].split()[0]) != uid:
                continue
            if text.split("PPid:", 1)[1].split()[0] == tester:  # the test starting another of these
                continue
            with open(f"/proc/{p}/cmdline", "rb") as c:
                if b"kc-stopper" in c.read():  # another of these: spare it
                    spared.add(p)
                    continue
            os.kill(int(p), signal.SIGSTOP)
            if p not in seen:
                seen.add(p)
                print(p, flush=True)
        except (OSError, ValueError, IndexError):
            pass
    if not ready:
        print("ready", flush=True)
        ready = True
    time.sleep(period)
"""


def _uid_events_socket():
    """A netlink socket subscribed to the kernel's process events (the proc
    connector; root only)."""
    import struct
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)  # NETLINK_CONNECTOR
    sock.bind((0, 1))  # CN_IDX_PROC
    op = struct.pack("I", 1)  # PROC_CN_MCAST_LISTEN
    cn = struct.pack("IIIIHH", 1, 1, 0, 0, len(op), 0) + op
    sock.send(struct.pack("IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)
    sock.settimeout(0.2)
    return sock


def _uid_events(sock, uid, on_process, stop_event):
    """Calls on_process(pid) for every process that takes real uid `uid`
    (setresuid) or is forked by one, until stop_event is set."""
    import struct
    try:
        while not stop_event.is_set():
            try:
                d = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:  # ENOBUFS: events were lost; the scanner covers them
                continue
            if len(d) < 68:
                continue
            what = struct.unpack_from("I", d, 36)[0]
            if what == 0x4:  # PROC_EVENT_UID: pid, tgid, ruid, euid
                pid, _, ruid, _ = struct.unpack_from("IIII", d, 52)
                if ruid == uid:
                    on_process(pid)
            elif what == 0x1:  # PROC_EVENT_FORK: parent pid, tgid, child pid, tgid
                _, _, child, _ = struct.unpack_from("IIII", d, 52)
                try:
                    if int(Path(f"/proc/{child}/status").read_text().split("Uid:", 1)[1].split()[0]) == uid:
                        on_process(child)
                except (OSError, ValueError, IndexError):
                    pass
    finally:
        sock.close()


class Stopper:
    """A hostile user: a process of theirs, running as them, that SIGSTOPs every
    other process of theirs (found by scanning /proc) every `period` seconds.
    The writer the helper forks drops to the user, so it is one of them.

    A determined user in C catches a process that lives a millisecond; a Python
    scan does not. So the test also stops, as root and at once, every process
    the kernel reports taking the user's uid: the stop is what the user could
    do, only sooner. The scanner proves the user may; `victims` lists both's."""

    def __init__(self, user, period=0.001, uid=None, gid=None):
        if uid is None:
            pw = pwd.getpwnam(user)
            uid, gid = pw.pw_uid, pw.pw_gid
        self.uid = uid
        self.victims = []
        self.done = threading.Event()
        self.p = subprocess.Popen(["python3", "-c", STOPPER, str(period), str(os.getpid()), "kc-stopper"],
                                  user=uid, group=gid,
                                  extra_groups=[], cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        # Subscribed before the constructor returns: nothing the test starts next escapes it.
        self.events = threading.Thread(target=_uid_events, args=(_uid_events_socket(), uid, self._stop_now, self.done),
                                       daemon=True)
        self.events.start()
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.ready.wait(10)  # its first scan is done: stopping from now on

    def _stop_now(self, pid):
        if pid == self.p.pid or pid in self.victims:
            return
        try:  # the stoppers are spared, and so is the test's own child between fork and exec
            status = Path(f"/proc/{pid}/status").read_text()
            if (int(status.split("PPid:", 1)[1].split()[0]) == os.getpid()
                    or b"kc-stopper" in Path(f"/proc/{pid}/cmdline").read_bytes()):
                return
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGSTOP)
            self.victims.append(pid)
        except ProcessLookupError:
            pass

    def _read(self):
        for line in self.p.stdout:
            if line.strip() == "ready":
                self.ready.set()
            else:
                self.victims.append(int(line))
        self.ready.set()

    def stopped(self):
        """The user's processes that are stopped right now."""
        out = []
        for pid in pids_of_uid(self.uid):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state in ("T", "t") and pid != self.p.pid:
                out.append(pid)
        return out

    def stop(self):
        self.done.set()
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.reader.join(2)  # every victim it reported is counted
        self.events.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def our_secrets(cluster, host_id=None, user=None):
    """Revocation Secrets of ours on the API server (admin kubectl), optionally
    only those annotated with this host and user: [(namespace, name, uid)]."""
    out = cluster.kubectl("get", "secrets", "-A", "-l", "app.kubernetes.io/managed-by=pam-kubeconfig",
                          "-o", "json").stdout
    found = []
    for s in json.loads(out)["items"]:
        ann = s["metadata"].get("annotations") or {}
        if host_id is not None and ann.get("pam-kubeconfig/host") != host_id:
            continue
        if user is not None and ann.get("pam-kubeconfig/user") != user:
            continue
        found.append((s["metadata"]["namespace"], s["metadata"]["name"], s["metadata"]["uid"]))
    return found


def unique_host_id(prefix="kct"):
    return f"{prefix}-{secrets.token_hex(5)}"


@pytest.fixture
def fault_proxy(cluster):
    """A fault-injecting TLS proxy in front of the real API server (tests/faultproxy.py)."""
    from faultproxy import FaultProxy
    made = []

    def make(name="proxy"):
        p = FaultProxy(cluster.server, cluster.ca_file, name)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# ---- the root ledger (issue 26) ----

LEDGER_DIR = Path("/var/log/pam_kubeconfig")


class PrivateLedger:
    """A tmpfs of its own mounted on /var/log/pam_kubeconfig (root 0700) for
    one test: the ledger holds only what the test did, and a small size makes
    a full disk. Unmounted after; the machine's ledger underneath is untouched."""

    def __init__(self, size="16m"):
        LEDGER_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700,uid=0,gid=0", "kc-test-ledger", LEDGER_DIR])
        self.dir = LEDGER_DIR
        self.path = LEDGER_DIR / "ledger.jsonl"

    def lines(self):
        """Every line of the ledger and its rotations (oldest first), as text."""
        import gzip
        out = []
        names = sorted((p for p in self.dir.iterdir() if p.name.startswith("ledger.jsonl.")),
                       key=lambda p: -int(p.name.split(".")[2]))
        for p in names + ([self.path] if self.path.exists() else []):
            data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
            out += data.decode().splitlines()
        return out

    def records(self):
        return [json.loads(l) for l in self.lines()]

    def close(self):
        for _ in range(50):
            if run(["umount", LEDGER_DIR], check=False).returncode == 0:
                return
            time.sleep(0.1)  # a helper of the test still appending
        run(["umount", "-l", LEDGER_DIR])


@pytest.fixture
def private_ledger():
    made = []

    def make(size="16m"):
        made.append(PrivateLedger(size))
        return made[-1]

    yield make
    for m in reversed(made):
        m.close()
