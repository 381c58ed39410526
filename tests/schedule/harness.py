"""Runs one schedule (schedule.py) on a bastion of its own and checks I1-I6
against the API server.

Each schedule is a "host": a private mount namespace whose /var/lib, /var/cache
and /run directories of pam_kubeconfig are its own tmpfs (so one schedule's gc
and refresh, which walk every user of the host, never see another's users),
its own host_id, config, PAM service, group, users, and a fault proxy per
cluster. Every command of the schedule runs inside that namespace (nsenter):
sessions through the real libpam (the session driver), refresh and gc as the
timer runs them. Tokens are collected as root after every step from the token
files (or the first version's kubeconfig), never from our records.

Every session's PAM line names a wrapper as the helper (Ctx.helper_wrapper):
the real helper, unchanged, but for the one close a `nssdown` step marks (by
its session driver's pid), which runs with the user database failing.

A user of the schedule is a seat; the harness's users are accounts ("slots"):
one per seat at the start, and one more for each `reuse`, which shares the uid
of the account it replaced and is labelled u<seat>' (u<seat>'' for a second).

A certificate's session (`opencert`) runs under a PAM service of its own whose
root-owned pam_env line (no user file read) sets SSH_AUTH_INFO_0 before the
module, as sshd's ExposeAuthInfo would; the certificate is the run's CA's
(ssh-keygen -s), for the account's name and the principal of the first rule
of every cluster (schedule.cert_sa). Every cluster also names the API server
itself in `also_reachable_at` (the proxy is a load balancer in front of it):
the watch a `lock` step holds as the user goes there, since the proxy cannot
stream, and the cut must find it.

What the time does to a mapping (a certificate's valid-before, a session's
death, a lock and its `--for`) is judged over a window of the wall clock: a
check that a moment near such an edge could decide either way is skipped
(counted as "ambiguous"), never guessed."""
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import schedule as sch
from conftest import (BUILD, DRIVER, Background, Stopper, end_process, need_helper_options, pids_of_uid, preload_env,
                      run, token_of_context, user_runnable)
from faultproxy import FaultProxy, Rule

AUTH_CACHE_S = 11.0  # the API server caches a successful authentication ~10 s
TOKEN_TTL_S = 600  # the schedule config's token.ttl: the most a TokenRequest asks (the API server only shortens)
EXP_LEEWAY_S = 70  # DESIGN.md: the API server's leeway on `exp`, and its cache
PASSWD_LOCK = threading.Lock()  # useradd, userdel, gpasswd: one at a time
PRIVATE_DIRS = (("/var/lib/pam_kubeconfig", "0700"), ("/var/cache/pam_kubeconfig", "0700"),
                ("/run/pam_kubeconfig", "0755"))
HOLDER = ("set -e; " + "".join(f"mount -t tmpfs -o mode={m},size=16m kcsched {d}; " for d, m in PRIVATE_DIRS)
          + "echo ready; exec sleep 100000")
INFO = re.compile(r"^INFO kubectl: context (\S+) as ")
WATCHERS = user_runnable(Path(__file__).resolve().parents[1] / "lifecycle" / "watchers.py")
INF = float("inf")
DEBUG = os.environ.get("SCHED_DEBUG") == "1"  # refresh and gc run with --debug; a failing seed's report shows it
# Schedule users get uids from a counter above login.defs' UID_MAX, never handed
# out twice in a run: a deleted account's uid must not come back as another
# schedule's user while processes of the first may still be around.
_UIDS = {"next": 61000 + secrets.randbelow(2000)}


def _new_uid():
    import pwd
    while True:
        uid = _UIDS["next"]
        _UIDS["next"] += 1
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


def sa_user(sa):
    if not sa:
        return None
    ns, name = sa.split("/")
    return f"system:serviceaccount:{ns}:{name}"


def claims(token):
    """A ServiceAccount token's claims (not verified: only to know what it was
    minted for), or {}."""
    try:
        part = token.split(".")[1]
        out = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return out if isinstance(out, dict) else {}
    except (IndexError, ValueError):
        return {}


def token_sa(token):
    """The `sub` claim: which ServiceAccount the token was minted for."""
    return claims(token).get("sub")


def token_secret(token):
    """(name, uid) of the Secret the token is bound to, or (None, None)."""
    sec = (claims(token).get("kubernetes.io") or {}).get("secret") or {}
    return sec.get("name"), sec.get("uid")


def secret_name(host_id, user, cluster):
    """The revocation Secret's name for (host, user, cluster), as DESIGN.md
    gives it: which account of a reused uid a token was minted for."""
    h = hashlib.sha256(f"{host_id}\0{user}\0{cluster}".encode()).hexdigest()
    return f"pam-kubeconfig-{h[:20]}"


class Api:
    """SelfSubjectReview with a token, on one kept-alive connection per thread."""

    def __init__(self, cluster):
        u = cluster.server.removeprefix("https://")
        self.host, port = u.rsplit(":", 1)
        self.port = int(port)
        self.ctx = ssl.create_default_context(cafile=cluster.ca_file)
        self.local = threading.local()
        self.calls = 0

    def whoami(self, token):
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                                      timeout=15)
            try:
                conn.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body, headers)
                r = conn.getresponse()
                data = r.read()
                self.calls += 1
                if r.status == 201:
                    return json.loads(data)["status"]["userInfo"]["username"]
                return r.status
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("the API server did not answer a SelfSubjectReview")


class SecretLister:
    """Our Secrets on the API server (admin kubectl), one listing shared by
    every schedule that asks for one taken after a given moment."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.taken = -1.0
        self.items = []
        self.calls = 0

    def since(self, t):
        with self.lock:
            if self.taken < t:
                start = time.monotonic()
                out = self.cluster.kubectl("get", "secrets", "-A", "-l",
                                           "app.kubernetes.io/managed-by=pam-kubeconfig", "-o", "json").stdout
                self.items = json.loads(out)["items"]
                self.taken = start
                self.calls += 1
            return self.items


class Ctx:
    """What every schedule of a run shares."""

    def __init__(self, cluster, installed, verbose=False):
        self.cluster = cluster
        self.helper = installed / "pam-kubeconfig"
        self.module = installed / "pam_kubeconfig.so"
        self.api = Api(cluster)
        self.secrets = SecretLister(cluster)
        self.verbose = verbose
        # Every schedule's refresh and gc run with --deadline, a schedule's
        # `refresh --now`: without them the schedules test something else.
        # A close passes the uid it resolved at open (--uid): what `nssdown` needs.
        need_helper_options("--deadline", "--now", "--uid")
        self.nss_flags, self.helper_wrapper = self._wrapper(installed)
        self.ssh_ca = SshCa()

    def _wrapper(self, installed):
        """The helper the sessions' PAM lines name. The module runs it with a
        fixed environment, so a close meant to find the user database failing
        (`nssdown`) is marked by a file named for its session driver's pid (the
        helper's parent); the wrapper then runs the real helper under
        tests/hardening's shim (getpwnam_r and getpwuid_r fail with EIO; read in a
        constructor, before the helper clears its environment) and leaves
        `<pid>.used` to say so. The wrapper, the flags and their directories
        are root's and not group or world-writable, as the module requires."""
        shim = BUILD / "tests" / "failsyscall.so"
        if not shim.is_file():
            raise RuntimeError(f"{shim} is missing: make all builds it")
        flags = installed / "nssdown"
        flags.mkdir(mode=0o755, exist_ok=True)
        wrapper = installed / "pam-kubeconfig-sched"
        wrapper.write_text(
            "#!/bin/sh\n"
            "# The schedule tier's helper: the real one, but for a close whose session driver\n"
            "# the harness marked, which finds the user database failing.\n"
            f"if [ \"$1\" = close ] && [ -e {flags}/$PPID ]; then\n"
            f"\t: >{flags}/$PPID.used\n"
            f"\texec /usr/bin/env LD_PRELOAD={shim} KC_FAIL=getpwnam_r {self.helper} \"$@\"\n"
            "fi\n"
            f"exec {self.helper} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        return flags, wrapper


class SshCa:
    """The run's OpenSSH certificate authority: an ed25519 pair that signs one
    user key (which key a certificate binds does not matter to the helper:
    sshd proved its possession) with `ssh-keygen -s`."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="kc-sched-ca."))
        MADE["dirs"].add(self.dir)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kc-sched-ca", "-f", self.dir / "ca"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "user"])
        self.pub_line = (self.dir / "ca.pub").read_text()

    def sign(self, name, ttl):
        """SSH_AUTH_INFO_0 for a login of `name` with a certificate valid ttl
        seconds more (principals: the name and the one that elevates), and its
        valid-before (epoch seconds, as ssh-keygen -L reads it)."""
        d = Path(tempfile.mkdtemp(dir=self.dir))
        try:
            shutil.copy(self.dir / "user.pub", d / "k.pub")
            run(["ssh-keygen", "-q", "-s", self.dir / "ca", "-I", f"{name}@sched", "-n",
                 f"{name},{sch.CERT_PRINCIPAL}", "-V", f"-1m:+{ttl}s", d / "k.pub"])
            kind, blob = (d / "k-cert.pub").read_text().split()[:2]
            out = run(["ssh-keygen", "-L", "-f", d / "k-cert.pub"], env={**os.environ, "TZ": "UTC"}).stdout
        finally:
            shutil.rmtree(d, ignore_errors=True)
        m = re.search(r"Valid: from \S+ to (\S+)", out)
        import datetime
        vb = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
        return f"publickey {kind} {blob}", vb


def pam_env_line(value):
    """pam_env's config-file syntax setting SSH_AUTH_INFO_0 (tests/ssh's)."""
    escaped = value.replace("\\", "\\\\").replace("$", "\\$").replace("@", "\\@")
    return f'SSH_AUTH_INFO_0 DEFAULT="{escaped}"\n'


def _api_addr(server):
    """host:port of an https:// URL."""
    return server.removeprefix("https://").rstrip("/")


# ---- the world the schedule describes: the config, the groups, the accounts ----


class Model:
    """Indexed by account (slot): the seats' first accounts, then one per `reuse`."""

    def __init__(self, s):
        self.n_users, self.n_clusters = s.n_users, s.n_clusters
        self.user_rule = [list(r) for r in s.user_rule]
        self.group_rule = list(s.group_rule)
        self.member = list(s.member)
        self.deleted = [False] * s.n_users

    def add_like(self, u):
        """A new account with account u's rules: its own user rules, the same
        ServiceAccounts, and the same group membership. Returns its slot."""
        self.user_rule.append(list(self.user_rule[u]))
        self.member.append(self.member[u])
        self.deleted.append(False)
        self.n_users += 1
        return self.n_users - 1

    def mapping(self, u, c):
        if self.deleted[u]:
            return None
        if self.member[u] and self.group_rule[c]:
            return sch.admin_sa(c)
        return self.user_rule[u][c]

    def all(self):
        return {(u, c): self.mapping(u, c) for u in range(self.n_users) for c in range(self.n_clusters)}


# Everything a run made on the machine, for the last word in cleaning up (a
# schedule that never finished does not clean up after itself).
MADE = {"users": set(), "groups": set(), "holders": set(), "services": set(), "dirs": set()}


class Host:
    def __init__(self, ctx, s):
        self.ctx = ctx
        self.id = f"kcs-{s.seed}-{secrets.token_hex(3)}"
        self.proxies, self.holder, self.names, self.uids, self.gids, self.homes = [], None, [], [], [], []
        self.servers = []  # [cluster] -> the server the config names (`move` switches it)
        self.group = self.service = None
        self.cert_services = []  # the PAM services of certificates' sessions
        self.dir = Path(tempfile.mkdtemp(prefix="kc-sched."))
        MADE["dirs"].add(self.dir)
        try:
            self._make(ctx, s)
        except BaseException:
            self.close()
            raise

    def _make(self, ctx, s):
        os.chmod(self.dir, 0o755)
        self.ca = self.dir / "ca.pem"
        shutil.copy(ctx.cluster.ca_file, self.ca)
        os.chmod(self.ca, 0o644)
        self.trusted = self.dir / "ssh_ca.pub"
        self.trusted.write_text(ctx.ssh_ca.pub_line)
        os.chmod(self.trusted, 0o644)
        self.token = self.dir / "minter.token"
        self.token.write_text(ctx.cluster.minter_token() + "\n")
        os.chmod(self.token, 0o600)
        self.config = self.dir / "config.yaml"
        for c in range(s.n_clusters):
            self.proxies.append(FaultProxy(ctx.cluster.server, ctx.cluster.ca_file, f"c{c}"))
            self.servers.append(self.proxies[c].url)
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", HOLDER],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        MADE["holders"].add(self.holder)
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError("cannot make a private mount namespace for the schedule")
        self.ns = ["nsenter", "-t", str(self.holder.pid), "-m", "--"]
        self.root = Path(f"/proc/{self.holder.pid}/root")
        self.mnt = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        with PASSWD_LOCK:
            group = f"kcsg{secrets.token_hex(3)}"
            run(["groupadd", group])
            self.group = group
            MADE["groups"].add(group)
        for u in range(s.n_users):
            self.add_account(None, s.member[u])
        self.service = f"kc-sched-{secrets.token_hex(4)}"
        MADE["services"].add(self.service)
        self.module_line = (f"session optional {ctx.module} helper={ctx.helper_wrapper} config={self.config} "
                            f"timeout={sch.TIMEOUT_S}\n")
        Path("/etc/pam.d", self.service).write_text(self.module_line + "session required pam_permit.so\n")

    def cert_service(self, auth_info):
        """A PAM service whose root-owned pam_env line (readenv=0 user_readenv=0:
        no user's file) sets SSH_AUTH_INFO_0 to auth_info before the module."""
        name = f"{self.service}-{secrets.token_hex(3)}"
        conf = self.dir / f"{name}.env"
        conf.write_text(pam_env_line(auth_info))
        os.chmod(conf, 0o644)
        MADE["services"].add(name)
        self.cert_services.append(name)
        Path("/etc/pam.d", name).write_text(
            f"session required pam_env.so readenv=0 user_readenv=0 conffile={conf}\n"
            + self.module_line + "session required pam_permit.so\n")
        return name

    def add_account(self, uid, member):
        """A new account (useradd -u uid; None: a uid never handed out): its slot."""
        name = f"kcs{secrets.token_hex(3)}"
        with PASSWD_LOCK:
            if uid is None:
                uid = _new_uid()
            run(["useradd", "-m", "-s", "/bin/sh", "-u", str(uid)] + (["-G", self.group] if member else [])
                + [name])
            MADE["users"].add(name)
        pw = __import__("pwd").getpwnam(name)
        self.names.append(name)
        self.uids.append(pw.pw_uid)
        self.gids.append(pw.pw_gid)
        self.homes.append(Path(pw.pw_dir))
        return len(self.names) - 1

    def write_config(self, m):
        api = _api_addr(self.ctx.cluster.server)
        clusters = "".join(f"  - name: c{c}\n    server: {server}\n    certificate_authority: {self.ca}\n"
                           f"    also_reachable_at: [\"{api}\"]\n"
                           f"    auth:\n      token_file: {self.token}\n" for c, server in enumerate(self.servers))
        # First on every cluster: a valid certificate of the run's CA with the principal elevates.
        rules = "".join(f"  - user: \"*\"\n    cluster: c{c}\n    serviceaccount: {sch.cert_sa(c)}\n"
                        f"    ssh_certificate:\n      principal: {sch.CERT_PRINCIPAL}\n" for c in range(m.n_clusters))
        for c in range(m.n_clusters):
            if m.group_rule[c]:
                rules += f"  - group: {self.group}\n    cluster: c{c}\n    serviceaccount: {sch.admin_sa(c)}\n"
        for u, name in enumerate(self.names[:m.n_users]):
            for c in range(m.n_clusters):
                if m.user_rule[u][c]:
                    rules += f"  - user: {name}\n    cluster: c{c}\n    serviceaccount: {m.user_rule[u][c]}\n"
        # Every namespace of the schedule stays named by some rule (of users who never log in), so that
        # what a garbled record held can be found from the config, whatever the remaps did.
        for c in range(m.n_clusters):
            for sa in sch.sa_choices(c) + [sch.admin_sa(c), sch.cert_sa(c)]:
                rules += (f"  - user: kcs-nobody-{sa.replace('/', '-')}\n    cluster: c{c}\n"
                          f"    serviceaccount: {sa}\n")
        text = (f"host_id: {self.id}\ntoken:\n  ttl: 10m\nnetwork:\n  connect_timeout: 1s\n  request_timeout: 1s\n"
                f"  after_failure: 1s\nssh_certificates:\n  trusted_ca_keys: {self.trusted}\n"
                f"clusters:\n{clusters}mappings:\n{rules}")
        tmp = self.dir / "config.yaml.new"
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.config)

    def procs(self):
        """Processes in this host's mount namespace, but the holder."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{p}/ns/mnt") == self.mnt:
                        out.append(int(p))
                except OSError:
                    pass
        return out

    def close(self):
        for p in self.proxies:
            p.close()
        for uid in set(self.uids):
            for pid in pids_of_uid(uid):
                _kill(pid)
        if self.holder:
            for pid in self.procs():
                _kill(pid)
            self.holder.kill()
            self.holder.wait()
            MADE["holders"].discard(self.holder)
        for service in ([self.service] if self.service else []) + self.cert_services:
            Path("/etc/pam.d", service).unlink(missing_ok=True)
            MADE["services"].discard(service)
        with PASSWD_LOCK:
            for name in self.names:
                run(["userdel", "-f", name], check=False)
                MADE["users"].discard(name)
            if self.group:
                run(["groupdel", self.group], check=False)
                MADE["groups"].discard(self.group)
        for home in self.homes:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        MADE["dirs"].discard(self.dir)


def clean_up_everything():
    """What schedules that never finished left: their sessions, users, groups,
    namespaces, PAM services and directories."""
    for holder in list(MADE["holders"]):
        mnt = os.readlink(f"/proc/{holder.pid}/ns/mnt") if holder.poll() is None else None
        for p in os.listdir("/proc"):
            try:
                if mnt and p.isdigit() and int(p) != holder.pid and os.readlink(f"/proc/{p}/ns/mnt") == mnt:
                    _kill(int(p))
            except OSError:
                pass
        holder.kill()
        holder.wait()
    for name in list(MADE["users"]):
        try:
            pw = __import__("pwd").getpwnam(name)
        except KeyError:
            continue
        for pid in pids_of_uid(pw.pw_uid):
            _kill(pid)
        run(["userdel", "-r", "-f", name], check=False)
    for group in MADE["groups"]:
        run(["groupdel", group], check=False)
    for service in MADE["services"]:
        Path("/etc/pam.d", service).unlink(missing_ok=True)
    for d in MADE["dirs"]:
        shutil.rmtree(d, ignore_errors=True)


def _kill(pid, group=False):
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _proc_state(pid):
    """(state letter, real uid, argv[1]) of a process, or None when it is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        uid = next(int(l.split()[1]) for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if l.startswith("Uid:"))
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return state, uid, (argv[1] if len(argv) > 1 else argv[0]).decode(errors="replace") or "?"
    except (OSError, IndexError, StopIteration, ValueError):
        return None


def _end_watch(w):
    """SIGKILL (a watcher the user SIGSTOPped would not take a SIGTERM) and reap."""
    try:
        w.p.kill()
    except OSError:
        pass
    w.p.wait()
    w.thread.join(timeout=5)


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return out


# ---- one session: the session driver holding it open ------------------------------


class Session:
    def __init__(self, runner, u, cert_ttl=None):
        self.r = runner
        self.u = u
        self.p = None
        self.lines = []
        self.live = False
        self.clusters = set()
        self.open_start = None
        self.open_wall = None  # wall clock at the open's start
        self.open_wall_end = None  # and once it answered
        self.unrecorded = False  # its open ran to its end and wrote no cluster: the helper kept no record
        self.ended_wall = None  # wall clock once closed, crashed or killed (at the latest)
        self.n = runner.next_session_number()
        self.service = runner.host.service
        self.cert_vb = None  # the certificate's valid-before (epoch seconds), for a certificate's session
        if cert_ttl is not None:
            auth_info, self.cert_vb = runner.ctx.ssh_ca.sign(runner.host.names[u], cert_ttl)
            self.service = runner.host.cert_service(auth_info)

    def __repr__(self):
        return f"{self.r.label(self.u)}#{self.n}"

    def _arm(self, step):
        """Starts the step's SIGKILL timer and a watchdog; returns a function
        that stops both and says whether the step's kill fired."""
        fired = threading.Event()
        timers = []
        if step and step.kill:
            target, at = step.kill

            def fire():
                fired.set()
                self.r.kills += 1
                if target == "driver":
                    self.r.orphans += children(self.p.pid)
                    _kill(self.p.pid)
                else:
                    for child in children(self.p.pid):
                        _kill(child, group=True)
                        _kill(child)
            timers.append(threading.Timer(at, fire))
        # No open or close may outlive the module's timeout= by much: past 6 s more, it is killed.
        timers.append(threading.Timer(sch.TIMEOUT_S + 6, lambda: _kill(self.p.pid)))
        for t in timers:
            t.daemon = True
            t.start()

        def disarm():
            for t in timers:
                t.cancel()
                t.join()  # a kill already under way finishes before we look
            return fired.is_set()
        return disarm

    def _read_until(self, done):
        while True:
            line = self.p.stdout.readline()
            if not line:
                return None
            line = line.rstrip("\n")
            self.lines.append(line)
            if done(line):
                return line

    def open(self, step=None):
        self.open_wall = time.time()
        self.open_start = start = time.monotonic()
        self.p = subprocess.Popen(self.r.host.ns + [str(DRIVER), "--hold", self.service,
                                                    self.r.host.names[self.u]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env=preload_env(), start_new_session=True)
        disarm = self._arm(step)
        line = self._read_until(lambda l: l.startswith("open "))
        took = time.monotonic() - start
        ready = line is not None and line.startswith("open 0 ") and self._read_until(lambda l: l == "READY")
        fired = disarm()
        self.open_wall_end = time.time()
        killed = fired and step.kill[0] == "driver"
        self.live = bool(ready) and not killed and self.p.poll() is None
        self.clusters = {m.group(1) for l in self.lines if (m := INFO.match(l))}
        self.unrecorded = line is not None and not fired and not self.clusters
        if line is not None and not killed:
            self.r.check_deadline(f"open {self}", took, sch.TIMEOUT_S)
        elif line is None and not killed:
            self.r.violate("I4", f"open {self}: the session driver gave no answer within {took:.1f}s")
        if not self.live:
            self._reap()
            self.ended_wall = time.time()
        cert = f" (certificate valid {self.cert_vb - time.time():.1f}s more)" if self.cert_vb else ""
        return f"open {self}{cert}: {line or 'killed'} {sorted(self.clusters)} {took:.2f}s"

    def close(self, step=None):
        if not self.live:
            return f"close {self}: not open"
        self.live = False
        start = time.monotonic()
        disarm = self._arm(step)
        try:
            self.p.stdin.write("close\n")
            self.p.stdin.flush()
        except OSError:
            pass
        line = self._read_until(lambda l: l.startswith("close "))
        took = time.monotonic() - start
        killed = disarm() and step.kill[0] == "driver"
        if line is not None:
            self.r.check_deadline(f"close {self}", took, sch.TIMEOUT_S)
        elif not killed:
            self.r.violate("I4", f"close {self}: the session driver gave no answer within {took:.1f}s")
        self._reap()
        self.ended_wall = time.time()
        return f"close {self}: {line or 'killed'} {took:.2f}s"

    def crash(self):
        if not self.live:
            return f"crash {self}: not open"
        self.live = False
        self.r.orphans += children(self.p.pid)
        _kill(self.p.pid)
        self._reap()
        self.ended_wall = time.time()
        return f"crash {self}: SIGKILLed its session process"

    def _reap(self):
        try:
            self.p.wait(timeout=sch.TIMEOUT_S + 8)
        except subprocess.TimeoutExpired:
            _kill(self.p.pid)
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass


# ---- the runner ------------------------------------------------------------------------


class Result:
    def __init__(self, schedule):
        self.schedule = schedule
        self.violations = []
        self.log = []
        self.took = 0.0
        self.counts = {}
        self.error = None
        self.debug = []

    def report(self):
        lines = [f"seed {self.schedule.seed}: " + ("ok" if not self.violations else
                                                    f"{len(self.violations)} violation(s)")]
        lines += [f"  {code}: {msg}" for code, msg in self.violations]
        if self.error:
            lines.append(f"  harness error: {self.error}")
        hints = suspects(self.schedule, self.violations)
        if hints:
            lines.append(f"  looks like issue 11's escape(s) {', '.join(map(str, hints))}")
        lines.append(self.schedule.describe())
        lines += [f"     {l}" for l in self.log]
        lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()) if v))
        lines.append(f"  replay: make chaos SCHEDULES=1 SEED={self.schedule.seed}")
        lines += self.debug  # SCHED_DEBUG=1: what refresh and gc said with --debug
        return "\n".join(lines)


class Runner:
    def __init__(self, ctx, schedule):
        self.ctx = ctx
        self.s = schedule
        self.res = Result(schedule)
        self.model = Model(schedule)
        self.host = None
        self.sessions = [[] for _ in range(schedule.n_users)]
        self.tokens = [{} for _ in range(schedule.n_users)]  # token -> cluster index
        self.seat = list(range(schedule.n_users))  # [seat] -> its account now (slot)
        self.seat_of = list(range(schedule.n_users))  # [slot] -> its seat
        self.moved_tokens = {}  # token -> cluster, for tokens collected before their cluster's server moved
        self.refusals = []  # the `refuse` steps' proxy rules
        self.unmapped_at = {}
        self.garbled_at = [float("-inf")] * schedule.n_users
        # Accounts whose Secrets nothing on the host names any more: their
        # records garbled while they were the uid's, then the uid given to
        # another account; or the uid given to another account, then garbled
        # (a former owner's name is kept in a file's name, which garble leaves,
        # but its grant files are per cluster and namespace, shared with the new
        # account, which an unreadable one is recovered for). No command can
        # name their Secrets: their tokens end at their exp (I1's expiry form),
        # which a schedule does not wait for.
        self.nameless = set()
        self.bg = []
        self.stoppers = []
        self.orphans = []
        self.kills = 0
        self.lock = threading.Lock()
        self.numbers = 0
        self.last_rc = None
        self.locks = {}  # slot -> [lock]: the `lock` steps' revokes (wall clock), and their unlocks
        self.base_hist = {}  # (slot, cluster) -> [(wall, ServiceAccount or None)]: the config's mapping over time
        self.checks = []  # checks that wait for the authentication cache beside the steps
        self.last_heal = [float("-inf")] * schedule.n_clusters  # monotonic: when a fault of the cluster last ended
        self.counts = {"I1-tokens": 0, "I1-secret-checks": 0, "I2": 0, "I2-moved": 0, "I3": 0, "ops": 0,
                       "stopped": 0, "nssdown": 0, "nssdown-last": 0, "reuse": 0, "move": 0,
                       "refused-deletes": 0, "certs": 0, "I2-cert": 0, "I5": 0, "I5-refresh": 0, "locks": 0,
                       "I6": 0, "I6-revoke": 0, "I6-streams": 0, "ambiguous": 0}

    def label(self, u):
        """u<seat>, with a prime for each reuse of the seat's uid."""
        seat = self.seat_of[u]
        return f"u{seat}" + "'" * sum(1 for v in range(u) if self.seat_of[v] == seat)

    def slots(self):
        return range(len(self.seat_of))

    def next_session_number(self):
        with self.lock:
            self.numbers += 1
            return self.numbers

    def violate(self, code, msg):
        with self.lock:
            self.res.violations.append((code, msg))

    def note(self, text):
        with self.lock:
            self.res.log.append(f"{time.monotonic() - self.t0:7.2f}s {text}")

    def check_deadline(self, what, took, deadline_s):
        if took > deadline_s + 1:
            self.violate("I4", f"{what} took {took:.2f}s, deadline {deadline_s}s")

    # ---- tokens, read as root from where the helper put them ----

    def read_token(self, u, c):
        """The token of account u's uid on c (which may be another account's of
        the uid: collect() says whose)."""
        path = self.host.root / "run/pam_kubeconfig" / str(self.host.uids[u]) / f"c{c}.token"
        try:
            return path.read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            pass
        except OSError:
            return None
        return token_of_context(self.host.homes[u] / ".kube" / "config-eks", f"c{c}")

    def collect(self):
        """Every uid's tokens, each to the account it was minted for: by the
        Secret it is bound to, which names the account; else the uid's newest."""
        by_uid = {}
        for u in self.slots():
            by_uid.setdefault(self.host.uids[u], []).append(u)
        for accounts in by_uid.values():
            for c in range(self.s.n_clusters):
                t = self.read_token(accounts[-1], c)
                if not t:
                    continue
                owner = accounts[-1]
                if len(accounts) > 1:
                    name = token_secret(t)[0]
                    owner = next((u for u in accounts if secret_name(self.host.id, self.host.names[u], f"c{c}")
                                  == name), owner)
                with self.lock:
                    new = t not in self.tokens[owner]
                    self.tokens[owner].setdefault(t, c)
                if new and len(accounts) == 1:
                    self.minted_while_locked(owner, c, t)

    def minted_while_locked(self, u, c, t):
        """I6: no token is minted for a user while their lock stands (from the
        moment `revoke` returned, to the start of the `unlock` or the --for's end)."""
        iat = claims(t).get("iat")
        if not isinstance(iat, (int, float)):
            return
        for k in list(self.locks.get(u, [])):
            if k["held"] + 1 < iat and iat + 1 < self.lock_sure_end(k):
                self.violate("I6", f"{self.label(u)} c{c}: a token of {token_sa(t)} minted at {iat:.0f}, "
                                   f"{iat - k['held']:.1f}s into a lock that stands (`revoke` returned at "
                                   f"{k['held']:.1f})")

    # ---- the world changes ----

    def remodel(self, change):
        before = self.model.all()
        change()
        now, wall = time.monotonic(), time.time()
        for key, sa in self.model.all().items():
            if before.get(key) and not sa:
                self.unmapped_at[key] = now
            if before.get(key) != sa:
                self.base_hist.setdefault(key, []).append((wall, sa))
        self.host.write_config(self.model)

    def base_at(self, u, c, wall):
        """The config's mapping of (u, c) at a moment of the wall clock (None
        before the account existed)."""
        out = None
        for t, sa in self.base_hist.get((u, c), []):
            if t <= wall:
                out = sa
        return out

    # ---- what the time does to a mapping: locks and certificates ----

    @staticmethod
    def lock_sure_end(k):
        """Until when the lock surely stands (wall clock): the unlock's start or
        the --for's end (the lock's `since` is the whole second revoke started in)."""
        end = k["unlock_start"] if k["unlock_start"] is not None else INF
        if k["for"]:
            end = min(end, int(k["start"]) + k["for"])
        return end

    def lock_state(self, u, t0, t1):
        """'yes': account u is locked from t0 to t1 (wall clock); 'no': at no
        moment of it; 'maybe'."""
        out = "no"
        for k in self.locks.get(u, []):
            if k["held"] <= t0 and t1 + 1 < self.lock_sure_end(k):
                return "yes"
            maybe_end = k["unlock_end"] if k["unlock_end"] is not None else INF
            if k["for"]:
                maybe_end = min(maybe_end, k["returned"] + k["for"] + 1)
            if k["start"] <= t1 and t0 <= maybe_end + 1:
                out = "maybe"
        return out

    def cert_state(self, u, t0, t1):
        """'yes': a live session of account u holds a certificate valid from t0
        to t1 (wall clock), so u is elevated; 'no': no session of u's uid held
        one that was valid at a moment of it; 'maybe'. A session whose records
        were garbled after it opened says 'maybe' at most: its certificate may
        no longer be read, and the helper then maps the user without it."""
        uid, out = self.host.uids[u], "no"
        for v in self.slots():
            if self.host.uids[v] != uid:
                continue
            for s in self.sessions[v]:
                if s.cert_vb is None or s.open_wall is None or s.unrecorded:
                    continue  # a login that wrote no cluster leaves no record: its certificate counts nowhere
                # Garbled since it opened: the helper may no longer read its certificate (less access).
                garbled = self.garbled_at[v] >= s.open_start
                if v == u and s.live and s.clusters and s.open_wall_end is not None and s.open_wall_end <= t0 \
                        and s.cert_vb > t1 + 2 and not garbled:
                    return "yes"
                ended = s.ended_wall if s.ended_wall is not None else INF
                if s.open_wall <= t1 + 1 and min(ended, s.cert_vb) >= t0 - 2:
                    out = "maybe"
        return out

    def effective(self, u, c, t0, t1):
        """(ServiceAccount or None, certain, why) that (u, c) maps to from t0 to
        t1 (wall clock): a lock maps nothing, a valid certificate elevates, else
        the config's mapping. Not certain when a moment of the window decides."""
        if self.model.deleted[u]:
            return None, True, "deleted"
        lk = self.lock_state(u, t0, t1)
        if lk != "no":
            return None, lk == "yes", "lock"
        ce = self.cert_state(u, t0, t1)
        if ce == "yes":
            return sch.cert_sa(c), True, "cert"
        if ce == "maybe":
            return None, False, "cert"
        return self.model.mapping(u, c), True, "config"

    def healthy(self, c):
        """The cluster's proxy passes everything, and did for network.after_failure and more."""
        p = self.host.proxies[c]
        with p.lock:
            clean = p.mode == "up" and not p.rules
        return clean and time.monotonic() - self.last_heal[c] > 1.6

    def later(self, at, tokens, code, why):
        """Every token refused from `at` (monotonic), checked beside the steps."""
        def check():
            time.sleep(max(0.0, at - time.monotonic()))
            self.wait_refused(tokens, code, why)
        if tokens:
            t = threading.Thread(target=check, daemon=True)
            t.start()
            self.checks.append(t)

    # ---- steps ----

    def helper_op(self, step, res=None):
        """refresh or gc as the timer runs them; res (a dict) gets rc and killed."""
        args = [step.op, "--config", str(self.host.config), "--deadline", str(sch.DEADLINE_MS)]
        args += ["--debug"] if DEBUG else []
        now = step.arg.get("now")
        if now is not None:
            args += ["--now", self.host.names[self.seat[now]]]
        start = time.monotonic()
        p = subprocess.Popen(self.host.ns + [str(self.ctx.helper)] + args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        killed = threading.Event()
        timer = None
        if step.kill:
            def fire():
                killed.set()
                self.kills += 1
                _kill(p.pid, group=True)
            timer = threading.Timer(step.kill[1], fire)
            timer.daemon = True
            timer.start()
        hard = sch.DEADLINE_MS / 1000 + 4
        try:
            _, err = p.communicate(timeout=hard)
        except subprocess.TimeoutExpired:
            killed.set()
            _kill(p.pid, group=True)
            _, err = p.communicate()
            self.violate("I4", f"{step.op} still ran {hard:.0f}s after it started (--deadline "
                               f"{sch.DEADLINE_MS} ms); killed")
        if timer:
            timer.cancel()
            timer.join()
        took = time.monotonic() - start
        if not killed.is_set():
            self.check_deadline(step.op, took, sch.DEADLINE_MS / 1000)
        self.last_rc = p.returncode
        if res is not None:
            res.update(rc=p.returncode, killed=killed.is_set())
        if DEBUG:
            self.res.debug.append(f"--- {step.op} at {time.monotonic() - self.t0:.2f}s:\n{err}")
        err = "\n".join(l for l in (err or "").splitlines() if ": debug: " not in l)
        tail = (err or "").strip().splitlines()[-1:] if p.returncode else []
        return f"{step.op}: rc={p.returncode}{' killed' if killed.is_set() else ''} {took:.2f}s {tail}"

    def live_session(self, seat, k):
        """The k-th (mod their number) live session of any account the seat had."""
        live = sorted((s for u in self.slots() if self.seat_of[u] == seat for s in self.sessions[u] if s.live),
                      key=lambda s: s.n)
        return live[k % len(live)] if live else None

    def stop(self, u, secs):
        st = Stopper(None, period=0.01, uid=self.host.uids[u], gid=self.host.gids[u])
        with self.lock:
            self.stoppers.append(st)
        t = threading.Timer(secs, st.stop)
        t.daemon = True
        t.start()

    def nssdown(self, step):
        """A close while the user database fails: the wrapper runs this one
        session's close under the shim (its driver's pid marks it)."""
        s = self.live_session(step.user, step.k)
        if not s:
            return f"nssdown u{step.user}: no session open"
        last = not any(o.live for o in self.sessions[s.u] if o is not s)
        flag = self.ctx.nss_flags / str(s.p.pid)
        used = self.ctx.nss_flags / f"{s.p.pid}.used"
        flag.touch(mode=0o644)
        try:
            out = s.close(step)
        finally:
            flag.unlink(missing_ok=True)
            applied = used.exists()
            used.unlink(missing_ok=True)
        if not applied:
            return f"nssdown {out} (the close never ran the helper: the user database never failed)"
        with self.lock:
            self.counts["nssdown"] += 1
            self.counts["nssdown-last"] += last
        return f"nssdown {out} (the user database failed; {'the' if last else 'not the'} account's last session)"

    def reuse(self, seat):
        """userdel -f of the seat's account (its sessions left running, as an
        admin's userdel -f leaves them), its uid to a new account with its rules
        (useradd -u), which logs in."""
        old = self.seat[seat]
        if self.garbled_at[old] > float("-inf"):
            self.nameless.add(old)
        with PASSWD_LOCK:
            if not self.model.deleted[old]:
                run(["userdel", "-f", self.host.names[old]], check=False)
        new = self.host.add_account(self.host.uids[old], self.model.member[old])
        with self.lock:
            self.sessions.append([])
            self.tokens.append({})
            self.garbled_at.append(float("-inf"))
            self.seat_of.append(seat)
            self.seat[seat] = new

        def change():
            self.model.deleted[old] = True
            assert self.model.add_like(old) == new
        self.remodel(change)
        self.counts["reuse"] += 1
        s = Session(self, new)
        with self.lock:
            self.sessions[new].append(s)
        opened = s.open()
        return (f"reuse u{seat}: {self.host.names[old]} deleted, uid {self.host.uids[new]} now "
                f"{self.host.names[new]} ({self.label(new)}); {opened}")

    def move(self, c):
        """c's server becomes the other name of its proxy: every token
        collected so far was minted under the old one."""
        self.collect()
        with self.lock:
            for u in self.slots():
                for t, tc in self.tokens[u].items():
                    if tc == c:
                        self.moved_tokens.setdefault(t, c)
            n = sum(1 for tc in self.moved_tokens.values() if tc == c)
        self.host.servers[c] = self.host.proxies[c].other_url
        self.host.write_config(self.model)
        self.counts["move"] += 1
        return f"move c{c}: server {self.host.servers[c]}, {n} token(s) minted before"

    def refresh_step(self, step):
        """A refresh; one that worked with the cluster healthy throughout ended
        every elevation whose certificate had ended, or whose session had died,
        when it began (I5): the tokens minted for it are refused after the
        authentication cache (checked beside the steps)."""
        now = step.arg.get("now")
        who = [self.seat[now]] if now is not None else list(self.slots())
        healthy = [self.healthy(c) for c in range(self.s.n_clusters)]
        with self.lock:
            before = {u: dict(self.tokens[u]) for u in who}
        start = time.time()
        res = {}
        out = self.helper_op(step, res)
        end = time.time()
        if res.get("rc") != 0 or res.get("killed"):
            return out
        due = {}
        for u in who:
            if sum(1 for v in self.slots() if self.host.uids[v] == self.host.uids[u]) > 1 or \
                    self.garbled_at[u] > float("-inf"):
                continue  # a uid of several accounts, or records made unreadable: the settle judges
            if self.cert_state(u, start - 1, end + 1) != "no":
                continue
            for t, c in before[u].items():
                if healthy[c] and self.healthy(c) and token_sa(t) == sa_user(sch.cert_sa(c)):
                    due[t] = (f"{self.label(u)} c{c}: a token of {token_sa(t)}, whose certificates had all ended "
                              "or whose sessions had died when a refresh began,")
        if due:
            with self.lock:
                self.counts["I5-refresh"] += len(due)
            self.later(time.monotonic() + AUTH_CACHE_S, due, "I5",
                       "after that refresh (rc=0, the API healthy) and the authentication cache")
        return out + (f" (I5: {len(due)} elevated token(s) to be refused)" if due else "")

    def user_streams(self, uid):
        """The uid's TCP connections to the API server, direct or through a proxy."""
        addrs = {_api_addr(self.ctx.cluster.server)} | {_api_addr(p.url) for p in self.host.proxies}
        out = run(["ss", "-Htne", "state", "established"], check=False).stdout
        return [l for l in out.splitlines() if f"uid:{uid} " in l + " " and any(f" {a} " in f" {l} " for a in addrs)]

    def watch_as(self, u):
        """A watch held by a process of account u with the token of one of its
        clusters (the user's client keeps a stream open), straight to the API
        server (the proxy cannot stream): the Background, or None."""
        for c in range(self.s.n_clusters):
            t = self.read_token(u, c)
            sa = token_sa(t) if t else None
            if not sa or not sa.startswith("system:serviceaccount:"):
                continue
            ns = sa.split(":")[2]
            copy = self.host.homes[u] / f".kcs-watch-{secrets.token_hex(3)}"
            try:
                copy.write_text(t)
                os.chown(copy, self.host.uids[u], self.host.gids[u])
                os.chmod(copy, 0o400)
            except OSError:
                continue
            w = Background(["python3", WATCHERS, "--server", self.ctx.cluster.server, "--ca", self.host.ca,
                            "--token-file", copy, "--namespace", ns, "--count", "1"],
                           user=self.host.uids[u], group=self.host.gids[u], extra_groups=[], cwd="/",
                           start_new_session=True)
            end = time.monotonic() + 3
            while time.monotonic() < end and not any(l.startswith(("ready", "refused", "failed"))
                                                     for l in w.lines):
                time.sleep(0.05)
            if w.saw("ready 1"):
                return w
            _end_watch(w)
        return None

    def lock_user(self, u, secs):
        """`pam-kubeconfig revoke USER [--for Ns]` (I6): once it returns, the
        user's open stream is cut (a watch they held), and, when it returned 0,
        every token of theirs minted before it is refused after the
        authentication cache (checked beside the steps); none is minted while
        the lock stands (collect)."""
        name, uid = self.host.names[u], self.host.uids[u]
        shared = sum(1 for v in self.slots() if self.host.uids[v] == uid) > 1
        watch = None if self.model.deleted[u] else self.watch_as(u)
        streams = len(self.user_streams(uid)) if watch else 0
        if watch and not streams:  # the check would prove nothing
            _end_watch(watch)
            watch = None
        self.collect()
        with self.lock:
            before = dict(self.tokens[u])
        k = {"start": time.time(), "held": INF, "returned": None, "for": secs, "unlock_start": None,
             "unlock_end": None}
        with self.lock:
            self.locks.setdefault(u, []).append(k)
            self.counts["locks"] += 1
        args = ["revoke", name, "--config", str(self.host.config), "--deadline", str(sch.DEADLINE_MS)]
        args += ["--for", f"{secs}s"] if secs else []
        args += ["--debug"] if DEBUG else []
        start = time.monotonic()
        try:
            p = run(self.host.ns + [str(self.ctx.helper)] + args, check=False, timeout=sch.DEADLINE_MS / 1000 + 8)
        except subprocess.TimeoutExpired:
            p = None
        took = time.monotonic() - start
        k["returned"] = time.time()
        if p is None:
            self.violate("I4", f"revoke {self.label(u)} still ran {took:.0f}s after it started; killed")
            return f"lock {self.label(u)}: timed out"
        self.check_deadline(f"revoke {self.label(u)}", took, sch.DEADLINE_MS / 1000)
        if DEBUG:
            self.res.debug.append(f"--- revoke {self.label(u)} at {time.monotonic() - self.t0:.2f}s:\n{p.stderr}")
            p.stderr = "\n".join(l for l in (p.stderr or "").splitlines() if ": debug: " not in l)
        if " is locked on " in p.stdout:
            k["held"] = k["returned"]
        out = f"lock {self.label(u)}{f' for {secs}s' if secs else ''}: rc={p.returncode} {took:.2f}s"
        if p.returncode != 0:
            out += f" {(p.stderr or '').strip().splitlines()[-1:]}"
        if watch:
            self.counts["I6-streams"] += 1
            end = time.monotonic() + 4
            while self.user_streams(uid) and time.monotonic() < end:
                time.sleep(0.1)
            left = self.user_streams(uid)
            if left and k["held"] < INF:
                self.violate("I6", f"{self.label(u)}: a watch of theirs is still streaming from the API server 4s "
                                   f"after `revoke` returned ({len(left)} connection(s); watcher: {watch.lines})")
            out += f"; their watch ({streams} connection(s) before) {'still streams' if left else 'was cut'}"
            _end_watch(watch)
        if p.returncode == 0 and not shared and before:
            self.counts["I6-revoke"] += len(before)
            self.later(time.monotonic() + AUTH_CACHE_S,
                       {t: f"{self.label(u)} c{c}: a token of {token_sa(t)} minted before the lock" for t, c in
                        before.items()},
                       "I6", "after `revoke` returned 0 and the authentication cache")
        return out

    def unlock_user(self, u):
        k = {"unlock_start": time.time()}
        open_locks = [x for x in self.locks.get(u, []) if x["unlock_start"] is None]
        for x in open_locks:
            x["unlock_start"] = k["unlock_start"]
        start = time.monotonic()
        try:
            p = run(self.host.ns + [str(self.ctx.helper), "unlock", self.host.names[u], "--config",
                                    str(self.host.config), "--deadline", str(sch.DEADLINE_MS)],
                    check=False, timeout=sch.DEADLINE_MS / 1000 + 8)
        except subprocess.TimeoutExpired:
            self.violate("I4", f"unlock {self.label(u)} still ran {time.monotonic() - start:.0f}s after it started; "
                               "killed")
            return f"unlock {self.label(u)}: timed out"
        took = time.monotonic() - start
        self.check_deadline(f"unlock {self.label(u)}", took, sch.DEADLINE_MS / 1000)
        if "is unlocked" in p.stdout or "holds no lock" in p.stdout:
            for x in open_locks:
                x["unlock_end"] = time.time()
        return f"unlock {self.label(u)}: rc={p.returncode} {took:.2f}s {p.stdout.strip()[:80]!r}"

    def do(self, step):
        op, seat = step.op, step.user
        # A user of the schedule is a seat: open, stop, group, remap, delete and
        # garble act on its account now; close, crash and nssdown on any session
        # of any account it had.
        u = self.seat[seat] if seat is not None else None
        who = self.label(u) if u is not None else None
        if op in ("open", "opencert"):
            s = Session(self, u, step.arg["ttl"] if op == "opencert" else None)
            with self.lock:
                self.sessions[u].append(s)
                self.counts["certs"] += op == "opencert"
            return s.open(step)
        if op == "lock":
            return self.lock_user(u, step.arg.get("for"))
        if op == "unlock":
            return self.unlock_user(u)
        if op == "close":
            s = self.live_session(seat, step.k)
            return s.close(step) if s else f"close u{seat}: no session open"
        if op == "crash":
            s = self.live_session(seat, step.k)
            return s.crash() if s else f"crash u{seat}: no session open"
        if op == "nssdown":
            return self.nssdown(step)
        if op == "reuse":
            return self.reuse(seat)
        if op == "move":
            return self.move(step.cluster)
        if op == "refuse":
            rule = self.host.proxies[step.cluster].add(Rule("status", method="DELETE", path=r"/secrets/",
                                                            status=403))
            with self.lock:
                self.refusals.append(rule)
            return f"{step}"
        if op == "refresh":
            return self.refresh_step(step)
        if op == "gc":
            return self.helper_op(step)
        if op == "stop":
            self.stop(u, step.arg["secs"])
            return f"stop {who}: SIGSTOPs every process of theirs for {step.arg['secs']:.2f}s"
        if op == "group":
            if self.model.deleted[u]:
                return f"group {who}: account deleted"
            with PASSWD_LOCK:
                run(["gpasswd", "-a" if step.arg["add"] else "-d", self.host.names[u], self.host.group],
                    check=False)
            self.remodel(lambda: self.model.member.__setitem__(u, step.arg["add"]))
            return f"group {who}: {'added to' if step.arg['add'] else 'removed from'} the group"
        if op == "remap":
            if "sa" in step.arg:
                self.remodel(lambda: self.model.user_rule[u].__setitem__(step.cluster, step.arg["sa"]))
            else:
                self.remodel(lambda: self.model.group_rule.__setitem__(step.cluster, step.arg["on"]))
            return f"config rewritten: {step}" + (f" ({who})" if who and who != f"u{seat}" else "")
        if op == "delete":
            if not self.model.deleted[u]:
                with PASSWD_LOCK:
                    run(["userdel", "-f", self.host.names[u]], check=False)
                self.remodel(lambda: self.model.deleted.__setitem__(u, True))
            return f"delete {who}: account deleted"
        if op == "fault":
            a, proxy = step.arg, self.host.proxies[step.cluster]
            if a["kind"] in ("down", "blackhole"):
                proxy.set_mode(a["kind"])
            else:
                proxy.add(Rule(a["kind"], method=a["method"], path=a["path"], status=a.get("status"),
                               delay=a.get("delay", 0.0), times=a.get("times")))
            return f"{step}"
        if op == "heal":
            self.host.proxies[step.cluster].clear()
            self.last_heal[step.cluster] = time.monotonic()
            return f"heal c{step.cluster}"
        if op == "garble":
            uid = self.host.uids[u]
            d = self.host.root / "var/lib/pam_kubeconfig" / str(uid)
            n = 0
            for f in (d.rglob("*") if d.exists() else []):
                if f.is_file() and not f.is_symlink():
                    f.write_bytes(b"\x00{garbled\xff" + os.urandom(24))
                    n += 1
            now = time.monotonic()
            for v in self.slots():  # the directory is the uid's: every account it had
                if self.host.uids[v] == uid:
                    self.garbled_at[v] = now
                    # A former owner's grant files are the new account's too (one per cluster and
                    # namespace): garbled, the helper recovers them under the new account's name.
                    if v != u:
                        self.nameless.add(v)
            return f"garble {who}: {n} files"
        if op == "pause":
            time.sleep(step.arg["secs"])
            return f"pause {step.arg['secs']:.2f}s"
        raise ValueError(op)

    def run_step(self, step):
        try:
            out = self.do(step)
        except Exception as e:  # noqa: BLE001 - a harness failure is reported with its seed
            out = f"{step}: harness error {e!r}"
            self.violate("harness", out)
        self.counts["ops"] += 1
        self.collect()
        self.note(out)

    # ---- settling and the invariants ----

    def quiesce(self, what):
        """Waits until nothing that matters runs in the host: no helper whose
        session driver we killed (its deadline came from the module, 2 s), no
        process of a user, nothing stopped or in uninterruptible sleep. What is
        still there after every deadline is a violation (I4), and is killed. A
        root process sleeping on its own (a later connection cut, say) is left."""
        bound = time.monotonic() + max(sch.DEADLINE_MS / 1000, sch.TIMEOUT_S) + 2
        drivers = {s.p.pid for ss in self.sessions for s in ss if s.live}
        users = set(self.host.uids)
        while True:
            left = []
            for p in self.host.procs():
                if p in drivers:
                    continue
                st = _proc_state(p)
                if st and (p in self.orphans or st[1] in users or st[0] in "TtD"):
                    left.append((p, st))
            if not left or time.monotonic() > bound:
                break
            time.sleep(0.1)
        if left:
            desc = sorted({f"{'the user' if uid in users else 'root'} {name} ({state})"
                           for _, (state, uid, name) in left})
            for p, _ in left:
                _kill(p)
            self.violate("I4", f"{what}: {len(left)} process(es) of the helper outlived every deadline: "
                               f"{', '.join(desc)}; killed")

    def expected(self, t0, t1):
        """(u, c, ServiceAccount user) that I2 holds the user's token to from t0
        to t1 (wall clock): a lock maps nothing, a valid certificate elevates.
        A certificate that ended while the config mapped nothing there unmapped
        it then, as a remap does."""
        out = []
        to_mono = time.monotonic() - time.time()
        for u in self.slots():
            for c in range(self.s.n_clusters):
                sa, certain, why = self.effective(u, c, t0, t1)
                if not sa or not certain:
                    if not certain and any(s.live and f"c{c}" in s.clusters for s in self.sessions[u]):
                        self.counts["ambiguous"] += 1
                    continue
                since = max(self.unmapped_at.get((u, c), float("-inf")), self.garbled_at[u])
                for s in self.sessions[u]:
                    if s.cert_vb is not None and s.cert_vb < t0 and self.base_at(u, c, s.cert_vb) is None:
                        since = max(since, s.cert_vb + 2 + to_mono)
                if any(s.live and f"c{c}" in s.clusters and s.open_start > since for s in self.sessions[u]):
                    out.append((u, c, sa_user(sa)))
                    self.counts["I2-cert"] += why == "cert"
        return out

    def every_bound_token_expired(self, secret, last_mint):
        """I1 as DESIGN.md states it: a Secret that remains counts as revoked
        once every token bound to it has expired (a revocation the API refuses
        ends there). None was minted after `last_mint` (wall clock), none asked
        more than token.ttl, and the API server accepts one up to its leeway past
        `exp`; the tokens seen bound to it must agree. Never within a schedule."""
        now = time.time()
        if now <= last_mint + TOKEN_TTL_S + EXP_LEEWAY_S:
            return False
        uid = secret["metadata"].get("uid")
        with self.lock:
            seen = [t for ts in self.tokens for t in ts if token_secret(t)[1] == uid]
        return all(claims(t).get("exp", float("inf")) + EXP_LEEWAY_S < now for t in seen)

    def wait_refused(self, tokens, code, why):
        """Every token refused, polling a few seconds past the cache."""
        pending = dict(tokens)
        end = time.monotonic() + 4
        while pending:
            for t in list(pending):
                if self.ctx.api.whoami(t) == 401:
                    del pending[t]
            if not pending or time.monotonic() > end:
                break
            time.sleep(1)
        for t, what in pending.items():
            self.violate(code, f"{what}: still accepted {why}")

    def settle_op(self, op):
        """refresh or gc with the API healthy. One that reports a failure (a
        request slower than the 1 s request_timeout on a loaded machine) runs
        again, twice at most: the invariants speak of a run that worked."""
        for attempt in range(3):
            self.note(self.helper_op(sch.Step(op)) + (f" (attempt {attempt + 1})" if attempt else ""))
            self.collect()
            if self.last_rc == 0:
                return

    def settle(self):
        for st in self.stoppers:
            st.stop()
        self.counts["victims"] = sum(len(st.victims) for st in self.stoppers)
        for t in self.bg:
            t.join(60)
        self.quiesce("after the steps")
        # Every fault heals here, `refuse` too: a revocation refused with 403 is
        # retried until every token bound to its Secret expired (10 min and more),
        # never within a schedule.
        for c, p in enumerate(self.host.proxies):
            p.clear()
            self.last_heal[c] = time.monotonic()
        time.sleep(1.3)  # past network.after_failure
        # A certificate about to end ends before the refresh (a few seconds at most), so that I5 judges it
        # (cert_state's margin is 2 s).
        soon = [s.cert_vb for ss in self.sessions for s in ss
                if s.cert_vb is not None and s.live and -2.5 < s.cert_vb - time.time() < 6]
        if soon:
            time.sleep(max(0.0, max(soon) + 2.5 - time.time()))
            self.note(f"waited for {len(soon)} certificate(s) to end")
        self.collect()
        # "revoked by the next refresh or gc": one of each, with the API healthy.
        t0 = time.time()
        self.settle_op("refresh")
        self.settle_op("gc")
        refreshed = time.monotonic()
        # The window over which a mapping is judged: to the end of the checks below.
        t1 = time.time() + AUTH_CACHE_S + 8

        # I2: every open, still-mapped session's cluster has a token that works as the mapped account.
        i2 = []
        for u, c, want in self.expected(t0, t1):
            t = self.read_token(u, c)
            self.counts["I2"] += 1
            got = self.ctx.api.whoami(t) if t else None
            if got != want:
                self.violate("I2", f"{self.label(u)} c{c}: session open and mapped to {want}; its token "
                                   f"{'is missing' if not t else f'authenticates as {got}'}")
            else:
                i2.append((u, c, want, t))
        # I3: what no longer maps (a user with sessions still open) is revoked by that refresh;
        # I5: so is an elevation whose certificates all ended (or whose sessions died) before it;
        # I6: a locked user (sessions open or not) holds no token that works.
        # And (I2, `move`) a token minted under a server its cluster no longer has is refused.
        gone = {"I3": {}, "I5": {}, "I6": {}}
        moved = {}
        for u in self.slots():
            locked = self.lock_state(u, t0, t1) == "yes"
            if not locked and not any(s.live for s in self.sessions[u]):
                continue
            if u in self.nameless:
                self.note(f"{self.label(u)}: its records garbled and its uid reused: its name is lost, its "
                          "tokens end at their exp")
                self.counts["ambiguous"] += 1
                continue
            for t, c in self.tokens[u].items():
                sa = token_sa(t)
                mapped, certain, why = self.effective(u, c, t0, t1)
                if not certain:
                    # A certificate that may still elevate: anything but its account or the config's is gone.
                    if why == "cert" and sa not in (sa_user(sch.cert_sa(c)), sa_user(self.model.mapping(u, c))):
                        gone["I3"][t] = f"{self.label(u)} c{c}: a token of {sa}, which maps no more,"
                    self.counts["ambiguous"] += 1
                    continue
                want = sa_user(mapped)
                if sa != want:
                    code = "I6" if why == "lock" else "I5" if sa == sa_user(sch.cert_sa(c)) else "I3"
                    gone[code][t] = (f"{self.label(u)} c{c}: a token of {sa}, which maps no more (now "
                                     f"{want or 'unmapped'}{', locked' if why == 'lock' else ''}),")
                elif t in self.moved_tokens:
                    moved[t] = f"{self.label(u)} c{c}: a token of {sa} minted before c{c}'s server moved,"
        time.sleep(max(0.0, refreshed + AUTH_CACHE_S - time.monotonic()))
        for code, tokens in gone.items():
            self.counts[code] += len(tokens)
            self.wait_refused(tokens, code, "after a refresh, a gc and the authentication cache")
        self.counts["I2-moved"] += len(moved)
        self.wait_refused(moved, "I2-moved", "after a refresh, a gc and the authentication cache")
        for u, c, want, t in i2:
            got = self.ctx.api.whoami(t)
            if got != want:
                self.violate("I2-late", f"{self.label(u)} c{c}: the session's token worked as {want} after refresh "
                                        f"and gc, then {got} {AUTH_CACHE_S:.0f}s later (with the API healthy)")

        # I1: all sessions closed, one gc with the API healthy: nothing of theirs is left.
        for ss in self.sessions:
            for s in ss:
                if s.live:
                    self.note(s.close())
        self.collect()
        self.quiesce("after the last logout")
        last_mint = time.time()  # nothing of the host's runs but this gc, which mints nothing
        self.settle_op("gc")
        collected = time.monotonic()
        time.sleep(AUTH_CACHE_S)
        items = self.ctx.secrets.since(collected)
        names = set(self.host.names)
        self.counts["I1-secret-checks"] += 1
        for s in items:
            ann = s["metadata"].get("annotations") or {}
            if ann.get("pam-kubeconfig/host") == self.host.id and ann.get("pam-kubeconfig/user") in names:
                u = self.host.names.index(ann["pam-kubeconfig/user"])
                where = f"Secret {s['metadata']['namespace']}/{s['metadata']['name']}"
                if u in self.nameless:
                    self.note(f"I1: {self.label(u)}: {where} remains: its account's name is lost (records "
                              "garbled, uid reused); its tokens end at their exp")
                    continue
                if self.every_bound_token_expired(s, last_mint):
                    self.note(f"I1: {self.label(u)}: {where} remains, every token bound to it expired: revoked")
                    continue
                self.violate("I1", f"{self.label(u)}: {where} is left after the last logout and a gc, "
                                   "and tokens bound to it may not have expired")
        tokens = {t: f"{self.label(u)} c{c}: a token of {token_sa(t)}" for u in self.slots()
                  if u not in self.nameless for t, c in self.tokens[u].items()}
        self.counts["I1-tokens"] += len(tokens)
        self.wait_refused(tokens, "I1", "after the last logout, a gc and the authentication cache")
        for t in self.checks:  # begun beside the steps, long done by now
            t.join(30)

    def run(self):
        self.t0 = time.monotonic()
        try:
            self.host = Host(self.ctx, self.s)
            self.host.write_config(self.model)
            self.base_hist = {key: [(float("-inf"), sa)] for key, sa in self.model.all().items()}
            for step in self.s.steps:
                if step.bg:
                    t = threading.Thread(target=self.run_step, args=(step,), daemon=True)
                    t.start()
                    self.bg.append(t)
                    time.sleep(step.gap)
                else:
                    self.run_step(step)
            self.settle()
        except Exception as e:  # noqa: BLE001
            import traceback
            self.res.error = f"{e!r}\n{traceback.format_exc()}"
            self.violate("harness", repr(e))
        finally:
            self.counts["kills"] = self.kills
            self.counts["stopped"] = len(self.stoppers)
            self.counts["refused-deletes"] = sum(r.hits for r in self.refusals)
            if self.host:
                for pid in self.orphans:
                    _kill(pid, group=True)
                try:
                    self.host.close()
                except Exception as e:  # noqa: BLE001
                    self.violate("harness", f"cleanup: {e!r}")
            self.res.took = time.monotonic() - self.t0
            self.res.counts = self.counts
        return self.res


def suspects(s, violations):
    """Which of issue 11's escapes each failure looks like (a hint for whoever
    reads the report; the replay says for sure)."""
    out = set()
    faults = [st.arg for st in s.steps if st.op == "fault"]
    failed_post = any(f.get("method") in ("POST", ".*") or f["kind"] in ("down", "blackhole") for f in faults)
    for code, msg in violations:
        m = re.match(r"u(\d+)'*(?: c(\d+))?:", msg)
        u = int(m.group(1)) if m else None
        c = int(m.group(2)) if m and m.group(2) else None
        mine = [st for st in s.steps if st.user == u]
        remapped = any(st.op == "group" or (st.op == "remap" and st.cluster == c) for st in mine) or any(
            st.op == "remap" and st.user is None and st.cluster == c for st in s.steps)
        late_delete = any(f.get("kind") == "delay" and f.get("method") in ("DELETE", ".*") and c is not None
                          and st.cluster == c for st in s.steps if st.op == "fault" for f in [st.arg])
        if code == "I4":
            out.add(1)  # a root process waited on what the user stopped
        elif code in ("I2", "I2-late") and "401" in msg and late_delete:
            out.add(5)  # the token's Secret died under it: a late DELETE
        elif code == "I2":
            out.add(4 if remapped else 2)  # a remap left no token; or a failed run dropped a live context
        elif code == "I3":
            out.add(2)  # a grant that stopped mapping survived: grants merged by cluster
        elif code == "I1":
            if any(st.op == "garble" for st in mine):
                out.add(7)
            elif failed_post and any(st.op == "close" for st in s.steps):
                out.add(3)
            elif any(st.op == "stop" for st in mine):
                out.add(1)
    return sorted(out)
