"""make bench, sections 9-11: the lifecycle's figures (issues 11 and 13).

 9. clusters minted concurrently: a login with 5 clusters against a login with 1
10. two silent clusters and a healthy one, through the real libpam and module,
    within the module's timeout=
11. `refresh` over 10,000 open sessions of 10,000 users: with nothing due (time,
    API requests, forks) and with everything due (one TokenRequest per user and
    cluster, the helper's CPU per rotation)
12. the cut of 100 and 5,000 streams of one user against `ss -K`
"""
import base64
import collections
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import statistics
import ssl
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import (CPU_BENCH as B_CPU, DRIVER, HELPER, REPO, RUN_DIR, STATE_DIR, SOCKCUT, Floor, Relays, cleanup,
                      cluster_entry, make_user, ms,
                      pam_calls, pam_service, sh, stats, target, timed, write_config)
from certs import make_ca, sign_cert  # tests/, on the path benchlib set

CLUSTER_RUNS = int(os.environ.get("BENCH_CLUSTER_RUNS", "21"))
SILENT_RUNS = int(os.environ.get("BENCH_SILENT_RUNS", "3"))
REFRESH_USERS = int(os.environ.get("BENCH_REFRESH_USERS", "10000"))
REFRESH_CLUSTERS = int(os.environ.get("BENCH_REFRESH_CLUSTERS", "2"))
REFRESH_RUNS = int(os.environ.get("BENCH_REFRESH_RUNS", "30"))
PROFILE = os.environ.get("BENCH_PROFILE")  # a directory: perf, callgrind and strace of a quiet refresh go there
TEAM = int(os.environ.get("BENCH_REFRESH_TEAM", "250"))  # users per group the mapping names
OPENERS = 4  # helper opens at once while the sessions are set up
DUE_BEFORE = 95  # the due config's refresh_before (%): a 30 min token is due DUE_AFTER_S after its mint
DUE_AFTER_S = 30 * 60 * (100 - DUE_BEFORE) // 100
DEADLINE_MS = "10000"  # what the module passes with its default timeout=10


def token_request(e):
    ref = e.get("objectRef", {})
    return e["verb"] == "create" and ref.get("resource") == "serviceaccounts" and ref.get("subresource") == "token"


def jti_of_event(e):
    v = e.get("annotations", {}).get("authentication.kubernetes.io/issued-credential-id", "")
    return v[4:] if v.startswith("JTI=") else None


def jti_of_token(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def token_file(uid, cluster_name):
    return RUN_DIR / str(uid) / f"{cluster_name}.token"


def settle(cluster):
    """The audit log is written as requests end; give the last line a moment."""
    time.sleep(1)


def down_marks():
    cache = Path("/var/cache/pam_kubeconfig")
    return set(cache.glob("down-*")) if cache.exists() else set()


# ---- 9: clusters minted concurrently --------------------------------------------------

def server_cpu():
    """CPU seconds the test cluster's kube-apiserver and etcd have used so far."""
    total = 0
    for name in ("apiserver.pid", "etcd.pid"):
        pid = (REPO / "build/test-cluster" / name).read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
    return total / os.sysconf("SC_CLK_TCK")


def open_close(user, cfg, session, clusters, uid):
    """One fresh login and its logout: (wall, the helper's CPU, the API server's and etcd's CPU) of the open."""
    before = server_cpu()
    w, _, rc, _, err, ru = timed([HELPER, "open", "--user", user, "--session", session, "--config", cfg,
                                  "--pid", str(os.getpid()), "--deadline", DEADLINE_MS])
    server = server_cpu() - before
    assert rc == 0, err
    missing = [n for n in clusters if not token_file(uid, n).exists()]
    assert not missing, f"open wrote no token for {missing}: {err}"
    _, _, rc, _, err, _ = timed([HELPER, "close", "--user", user, "--session", session, "--config", cfg,
                                 "--pid", str(os.getpid()), "--deadline", DEADLINE_MS])
    assert rc == 0, err
    return w, ru.ru_utime + ru.ru_stime, server


def floors_side_by_side(floors):
    """The login floor for k clusters: k curl processes started at once, each
    the login section's floor for one cluster (its Secret, then its
    TokenRequest, on one connection, TLS verified): the wall until the last
    has exited. Their Secrets are deleted afterwards, untimed."""
    start = time.perf_counter()
    procs = [subprocess.Popen([str(c) for c in f.open_cmd()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for f in floors]
    rcs = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    assert not any(rcs), rcs
    for f in floors:
        f.close()
    return wall


def profile_login(user, cfgs, names, uid, out, runs=10):
    """Where a login's time goes with 1 and 20 clusters: the jobs' own account
    (--debug), syscalls (strace -f -c, and a timeline with -tt -T), CPU by
    library and function over `runs` logins (perf), instructions by function
    (callgrind, one login)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for k, cfg in cfgs.items():
        base = [HELPER, "open", "--user", user, "--config", cfg, "--pid", str(os.getpid()), "--deadline", DEADLINE_MS]
        close = [HELPER, "close", "--user", user, "--config", cfg, "--deadline", DEADLINE_MS]
        p = sh([*base, "--session", f"pd{k}", "--debug"])
        (out / f"login-{k}.debug.txt").write_text(p.stderr)
        sh([*close, "--session", f"pd{k}"])
        sh(["strace", "-f", "-c", "-o", out / f"login-{k}.strace-c", *base, "--session", f"pc{k}"])
        sh([*close, "--session", f"pc{k}"])
        sh(["strace", "-f", "-tt", "-T", "-o", out / f"login-{k}.strace", *base, "--session", f"ps{k}"])
        sh([*close, "--session", f"ps{k}"])
        sh(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/login-{k}.callgrind", *base,
            "--session", f"pv{k}"])
        sh([*close, "--session", f"pv{k}"])
        (out / f"login-{k}.callgrind.txt").write_text(
            sh(["callgrind_annotate", "--inclusive=yes", out / f"login-{k}.callgrind"]).stdout)
        loop = " ; ".join(f"{' '.join(map(str, base))} --session pp{k}x{i} ; {' '.join(map(str, close))} "
                          f"--session pp{k}x{i}" for i in range(runs))
        sh(["perf", "record", "-F", "4000", "-g", "-o", out / f"login-{k}.perf", "--", "sh", "-c", loop])
        for sort in ("dso", "sym"):
            (out / f"login-{k}.perf.{sort}.txt").write_text(
                sh(["perf", "report", "-i", out / f"login-{k}.perf", "--stdio", "--no-children", "--sort", sort,
                    "-g", "none", "--percent-limit", "0.5"]).stdout)
    print(f"   profile of a login with 1 and 20 clusters: {out}")


CLUSTER_COUNTS = (1, 5, 20)


def bench_clusters(cluster, work):
    user = make_user("kcm")
    uid = pwd.getpwnam(user).pw_uid
    tag = secrets.token_hex(2)
    most = max(CLUSTER_COUNTS)
    names = [f"m{tag}-{i}" for i in range(most)]
    relays = Relays(cluster, most)
    floors = [Floor(cluster, work, server=s) for s in relays.servers]
    cfgs = {}
    for k in CLUSTER_COUNTS:
        clusters = "".join(cluster_entry(work, cluster, n, server=s) for n, s in zip(names[:k], relays.servers))
        mapping = "".join(f"  - user: {user}\n    cluster: {n}\n    serviceaccount: team-a/alice\n" for n in names[:k])
        cfgs[k] = write_config(work, cluster, mapping, name=f"clusters-{k}.yaml", clusters=clusters)
    requests = {}
    for k in CLUSTER_COUNTS:  # once each first: the requests one login makes (and warm caches)
        mark = cluster.audit_mark()
        open_close(user, cfgs[k], f"w{k}", names[:k], uid)
        settle(cluster)
        requests[k] = sum(1 for e in pam_calls(cluster, mark) if e["verb"] == "create")
    if PROFILE:
        profile_login(user, {k: cfgs[k] for k in (1, 20)}, names, uid, PROFILE)
    for k in CLUSTER_COUNTS:  # the floor's warm-up
        floors_side_by_side(floors[:k])
    runs = {k: [] for k in CLUSTER_COUNTS}
    floor = {k: [] for k in CLUSTER_COUNTS}
    for i in range(CLUSTER_RUNS):  # interleaved: a burst of load elsewhere hits all alike
        for k in CLUSTER_COUNTS:
            runs[k].append(open_close(user, cfgs[k], f"k{k}n{i}", names[:k], uid))
            floor[k].append(floors_side_by_side(floors[:k]))
    walls = {k: stats([r[0] for r in v]) for k, v in runs.items()}
    cpu = {k: (statistics.median(r[1] for r in v), sum(r[2] for r in v) / len(v)) for k, v in runs.items()}
    return walls, cpu, requests, {k: stats(v) for k, v in floor.items()}


def section_clusters(cluster, work, user, cfg, md):
    print(f"== 9: one login, {', '.join(map(str, CLUSTER_COUNTS))} clusters")
    walls, cpu, requests, floor = bench_clusters(cluster, work)
    ratio = {k: walls[k]["median"] / walls[1]["median"] for k in CLUSTER_COUNTS}
    floor_ratio = {k: floor[k]["median"] / floor[1]["median"] for k in CLUSTER_COUNTS}
    # What the machine allows at best: the CPU the login asks of the helper and
    # of the API server and etcd, spread perfectly over every core.
    cores = os.cpu_count()
    bound = {k: max(walls[1]["median"], (cpu[k][0] + cpu[k][1]) / cores) / walls[1]["median"]
             for k in CLUSTER_COUNTS}
    md += ["## Clusters are minted side by side", "",
           f"`pam-kubeconfig open --user U --session S --config C --pid P --deadline {DEADLINE_MS}` run directly "
           f"(what the module runs), timed from exec to exit; each run a fresh session of a user with no other "
           f"session, closed after it (so every login creates the revocation Secret and mints: "
           f"{', '.join(f'{requests[k]}' for k in CLUSTER_COUNTS)} API requests). Each cluster is a distinct "
           f"endpoint: its own loopback port, forwarded by the kernel (nftables DNAT) to the one test API server, "
           f"so no connection can be shared between two clusters. {CLUSTER_RUNS} runs each, interleaved, after "
           f"one warm-up each.", "",
           "| clusters | wall median | wall p95 | / one cluster | helper CPU (median) | API server + etcd CPU (mean) | "
           "CPU / cores, / one cluster's wall | floor: k curls side by side | floor / its one cluster | login / floor |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {k} | {ms(walls[k]['median'])} | {ms(walls[k]['p95'])} | {ratio[k]:.2f} | {ms(cpu[k][0])} | "
           f"{ms(cpu[k][1])} | {bound[k]:.2f} | {ms(floor[k]['median'])} | {floor_ratio[k]:.2f} | "
           f"{walls[k]['median'] / floor[k]['median']:.2f} |"
           for k in CLUSTER_COUNTS]
    md += ["", f"CPU: the helper's own (user + system, its threads and the writer it reaps, from `wait4`), and what "
           f"the test cluster's kube-apiserver and etcd spent meanwhile (`/proc/PID/stat`, 10 ms ticks, so a mean). "
           f"They share this machine's {os.cpu_count()} cores: a 20-cluster login asks the machine for "
           f"{ms(cpu[20][0] + cpu[20][1])} of CPU, a 1-cluster login for {ms(cpu[1][0] + cpu[1][1])}. The column "
           f"\"CPU / cores\" is the best any client could do here: that CPU spread perfectly over the {cores} cores, against "
           f"one cluster's wall time. The API server's and etcd's part alone puts a 20-cluster login at "
           f"{max(walls[1]['median'], cpu[20][1] / cores) / walls[1]['median']:.2f}x a 1-cluster one even if the "
           f"helper took no CPU at all.", "",
           f"The floor: what a script would do for k clusters, k `curl` processes started at once, each the login "
           f"section's floor for one cluster (its Secret, then its TokenRequest, on one connection, TLS verified against "
           f"the same CA), timed until the last has exited, interleaved with the logins above. It is the same machine's "
           f"answer to the same question: k clusters cost it {floor_ratio[5]:.2f}x (5) and {floor_ratio[20]:.2f}x "
           f"(20) of one.", ""]
    target("a login with 5 clusters <= 1.3x a login with 1 (issue 24)", ratio[5] <= 1.3,
           f"{ratio[5]:.2f} (the machine's CPU allows {bound[5]:.2f}; k curls side by side: {floor_ratio[5]:.2f})")
    target("a login with 20 clusters <= 2.5x a login with 1 (issue 24)", ratio[20] <= 2.5,
           f"{ratio[20]:.2f} (the machine's CPU allows {bound[20]:.2f}; k curls side by side: {floor_ratio[20]:.2f})")
    target("a login makes 2 API requests per cluster", all(requests[k] == 2 * k for k in CLUSTER_COUNTS),
           ", ".join(str(requests[k]) for k in CLUSTER_COUNTS))


# ---- 10: silent clusters -------------------------------------------------------------------

class Silent:
    """A loopback server that accepts every connection and never answers: with
    tls=None not even the TLS handshake (a hung load balancer); with tls an
    ssl.SSLContext, it completes the handshake, reads the request and says
    nothing (a hung API server)."""

    def __init__(self, tls=None):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.tls:
                threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn):
        try:
            tls = self.tls.wrap_socket(conn, server_side=True)
            self.conns.append(tls)
            while tls.recv(4096):
                pass
        except OSError:
            pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def silent_tls(work):
    """A server context whose certificate the helper trusts (its own CA file)."""
    d = work / "silent-tls"
    if not (d / "silent.pem").exists():
        ca, ca_key = make_ca(d, "silent")
        sign_cert(d, "silent", ca, ca_key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "silent.pem", d / "silent.key")
    return ctx, d / "silent-ca.pem"


def held_login(svc, user):
    """kc-session-driver --hold through the real libpam: (seconds to the answer, lines, process)."""
    start = time.perf_counter()
    p = subprocess.Popen([str(DRIVER), "--hold", svc, user], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("READY") or (line.startswith("open ") and not line.startswith("open 0 ")):
            break
    return time.perf_counter() - start, lines, p


def release(p):
    start = time.perf_counter()
    out, _ = p.communicate("close\n", timeout=60) if p.poll() is None else ("", "")
    return time.perf_counter() - start, out.splitlines()


def works_as_user(cluster, user, uid, healthy, env):
    """The healthy cluster's token file: there, the user's, 0400, and accepted:
    by the API server, and by kubectl run as the user with the session's KUBECONFIG."""
    path = token_file(uid, healthy)
    if not path.exists():
        return "no token file"
    st = path.stat()
    if st.st_uid != uid or st.st_mode & 0o777 != 0o400:
        return f"token file owner {st.st_uid} mode {st.st_mode & 0o777:o}"
    if cluster.whoami(path.read_text().strip()) != "system:serviceaccount:team-a:alice":
        return "token refused"
    p = sh(["runuser", "-u", user, "--", "env", f"KUBECONFIG={env.get('KUBECONFIG', '')}",
            f"HOME={pwd.getpwnam(user).pw_dir}", "kubectl", "--context", healthy, "auth", "whoami",
            "-o", "jsonpath={.status.userInfo.username}"])
    if p.returncode != 0 or p.stdout.strip() != "system:serviceaccount:team-a:alice":
        return f"kubectl as {user}: {p.stdout.strip()} {p.stderr.strip()}"
    return None


def silent_login(cluster, work, timeout, kind):
    """One first login (fresh cluster names and ports: no after_failure window
    applies) with two silent clusters listed before the healthy one."""
    user = make_user("kcq")
    uid = pwd.getpwnam(user).pw_uid
    tag = secrets.token_hex(2)
    ctx, ca = silent_tls(work) if kind == "tls" else (None, work / "ca.pem")
    silent = [Silent(ctx), Silent(ctx)]
    try:
        names = [f"q{tag}-silent-a", f"q{tag}-silent-b", f"q{tag}-healthy"]
        entries = [cluster_entry(work, cluster, n).replace(cluster.server, f"https://127.0.0.1:{s.port}")
                   .replace(f"{work}/ca.pem", str(ca)) for n, s in zip(names, silent)]
        entries.append(cluster_entry(work, cluster, names[2]))
        mapping = "".join(f"  - user: {user}\n    cluster: {n}\n    serviceaccount: team-a/alice\n" for n in names)
        cfg = write_config(work, cluster, mapping, name=f"silent-{tag}.yaml", clusters="".join(entries))
        svc = pam_service(work, cfg, True, timeout=timeout)
        took, lines, p = held_login(svc, user)
        rc = next((int(line.split()[1]) for line in lines if line.startswith("open ")), None)
        env = dict(line[4:].split("=", 1) for line in lines if line.startswith("ENV "))
        problem = None if rc == 0 else f"open {rc}: {lines}"
        problem = problem or works_as_user(cluster, user, uid, names[2], env)
        if not problem and any(token_file(uid, n).exists() for n in names[:2]):
            problem = "a silent cluster has a token file"
        closed, out = release(p)
        return {"open": took, "close": closed, "problem": problem,
                "close_rc": next((line for line in out if line.startswith("close ")), "")}
    finally:
        for s in silent:
            s.close()


SILENT_KINDS = {"tcp": "accepts the TCP connection, never answers (not even the TLS handshake)",
                "tls": "completes the TLS handshake, reads the request, never answers"}


def section_silent(cluster, work, user, cfg, md):
    print("== 10: two silent clusters and a healthy one")
    before = down_marks()
    cleanup.append(lambda: [m.unlink(missing_ok=True) for m in down_marks() - before])
    runs = {(k, t): [silent_login(cluster, work, t, k) for _ in range(SILENT_RUNS)]
            for k in SILENT_KINDS for t in (3, 10)}
    md += ["## Silent clusters do not hold a login up", "",
           "The session driver (`build/tests/kc-session-driver --hold SERVICE USER`) through the real libpam and "
           "module: `session required pam_kubeconfig.so ... timeout=T`, then `pam_permit`. The config lists two "
           "silent clusters (loopback servers) before a healthy one (the test API server). Each run is a first "
           "login: a fresh user, fresh cluster names and ports, so no `network.after_failure` window spares the "
           "silent ones. The open is timed from the driver's start to its `READY`; the healthy cluster must then be "
           "written: its token file the user's, 0400, accepted by the API server and by `kubectl auth whoami` run as "
           "the user with the session's `KUBECONFIG`. Defaults otherwise (`network.connect_timeout` 2 s, which "
           "covers the TLS handshake; `request_timeout` 5 s). Logouts are timed the same way (the driver's `close`).",
           "", "| silent servers | timeout= | opens (s) | healthy cluster written | logouts (s) |",
           "|---|---|---|---|---|"]
    for (k, t), rs in runs.items():
        opens = ", ".join(f"{r['open']:.2f}" for r in rs)
        closes = ", ".join(f"{r['close']:.2f}" for r in rs)
        md.append(f"| {SILENT_KINDS[k]} | {t} s | {opens} | {sum(r['problem'] is None for r in rs)} of {len(rs)} "
                  f"| {closes} |")
        md += [f"|  |  | problem: {r['problem']} | | |" for r in rs if r["problem"]]
    md.append("")
    for (k, t), rs in runs.items():
        worst = max(r["open"] for r in rs)
        target(f"2 silent ({k}) + 1 healthy cluster: open returns within timeout={t} with the healthy one written "
               f"(issue 11)", worst < t and all(r["problem"] is None for r in rs),
               f"slowest {worst:.2f} s, {sum(r['problem'] is None for r in rs)}/{len(rs)} written")


# ---- 11: refresh over many sessions ---------------------------------------------------------

ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")


def edit_accounts(edit):
    """Rewrites the four account files at once under the shadow suite's lock
    (lckpwdf, as useradd takes it): edit(name, lines) -> lines. One rewrite for
    10,000 accounts; useradd/userdel one by one rewrite every file each time
    (minutes, and quadratic)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.lckpwdf() == 0, "lckpwdf failed"
    try:
        for path in ACCOUNT_FILES:
            f = Path(path)
            st = f.stat()
            lines = edit(path, f.read_text().splitlines())
            tmp = f.with_name(f.name + ".kcbench")
            tmp.write_text("".join(line + "\n" for line in lines))
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o7777)
            os.replace(tmp, f)
    finally:
        libc.ulckpwdf()


def make_many_users(n, groups):
    """n accounts in one go, each with its own group and home, spread over the
    given groups (teams); passwords locked."""
    taken = {int(line.split(":")[2]) for path in ("/etc/passwd", "/etc/group")
             for line in Path(path).read_text().splitlines() if line.count(":") >= 3}
    base = 3_000_000 + secrets.randbelow(1000) * 10_000
    while any(base <= i < base + n + len(groups) for i in taken):
        base += 10_000 * 100
    names = set()
    while len(names) < n:
        names.add(f"kcr{secrets.token_hex(3)}")
    names = sorted(names)
    ids = {u: base + i for i, u in enumerate(names)}
    team_gid = {g: base + n + i for i, g in enumerate(groups)}
    members = {g: names[i::len(groups)] for i, g in enumerate(groups)}
    gone = set(names) | set(groups)
    add = {"/etc/passwd": [f"{u}:x:{ids[u]}:{ids[u]}::/home/{u}:/bin/bash" for u in names],
           "/etc/shadow": [f"{u}:!:20000:0:99999:7:::" for u in names],
           "/etc/group": [f"{u}:x:{ids[u]}:" for u in names] + [f"{g}:x:{team_gid[g]}:{','.join(members[g])}"
                                                               for g in groups],
           "/etc/gshadow": [f"{u}:!::" for u in names] + [f"{g}:!::{','.join(members[g])}" for g in groups]}

    def remove():
        t0 = time.perf_counter()
        edit_accounts(lambda path, lines: [line for line in lines if line.split(":", 1)[0] not in gone])
        for u in names:
            shutil.rmtree(f"/home/{u}", ignore_errors=True)
            shutil.rmtree(STATE_DIR / str(ids[u]), ignore_errors=True)
            shutil.rmtree(RUN_DIR / str(ids[u]), ignore_errors=True)
        print(f"   {len(names)} users removed in {time.perf_counter() - t0:.1f} s")
    cleanup.append(remove)
    edit_accounts(lambda path, lines: lines + add[path])
    for u in names:
        os.mkdir(f"/home/{u}", 0o750)
        os.chown(f"/home/{u}", ids[u], ids[u])
    return names


def refresh_configs(work, cluster, groups, names):
    """The same clusters and mapping (one rule per team and cluster). Quiet:
    30 min tokens, due 24 min after their mint. Due: 30 min tokens are due 90 s
    after theirs (5 % of the life left), and the 24 h tokens it mints 72 min
    after theirs, so each (user, cluster) rotates exactly once however long
    the runs take (20,000 rotations take minutes here)."""
    clusters = "".join(cluster_entry(work, cluster, n) for n in names)
    mapping = "".join(f"  - group: {g}\n    cluster: {n}\n    serviceaccount: team-a/alice\n"
                      for n in names for g in groups)
    out = []
    for name, token in (("refresh-quiet.yaml", "token:\n  ttl: 30m\n"),
                        ("refresh-due.yaml", f"token:\n  ttl: 24h\n  refresh_before: {DUE_BEFORE}%\n")):
        path = write_config(work, cluster, mapping, name=name, clusters=clusters)
        path.write_text(token + path.read_text())
        out.append(path)
    return out


class Holders:
    """One live process per session (`cpu_bench holders N`: N children that
    wait), as each session has its own sshd process: refresh checks each one."""

    def __init__(self, n):
        self.p = subprocess.Popen([str(B_CPU), "holders", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        self.pids = []
        for line in self.p.stdout:
            if line.strip() == "ready":
                break
            self.pids.append(int(line))
        assert len(self.pids) == n, f"{len(self.pids)} of {n} holders"
        cleanup.append(self.close)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait()


def open_all(users, cfg, holders):
    def one(i):
        return sh([HELPER, "open", "--user", users[i], "--session", "s1", "--config", cfg,
                   "--pid", holders.pids[i], "--deadline", DEADLINE_MS])
    with ThreadPoolExecutor(OPENERS) as ex:
        failed = [(users[i], p.returncode, p.stderr) for i, p in enumerate(ex.map(one, range(len(users))))
                  if p.returncode != 0]
    assert not failed, f"{len(failed)} opens failed, e.g. {failed[0]}"


def close_all(users, cfg):
    def one(u):
        return sh([HELPER, "close", "--user", u, "--session", "s1", "--config", cfg, "--deadline", DEADLINE_MS])
    with ThreadPoolExecutor(OPENERS) as ex:
        failed = [p.stderr for p in ex.map(one, users) if p.returncode != 0]
    if failed:
        print(f"cleanup: {len(failed)} closes failed, e.g. {failed[0]}")


def hyperfine(cmd, runs):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        p = sh(["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", f.name,
                " ".join(str(c) for c in cmd)])
        assert p.returncode == 0, p.stderr
        r = json.loads(Path(f.name).read_text())["results"][0]
    return {"median": r["median"], "mean": r["mean"], "min": r["min"], "max": r["max"], "n": len(r["times"])}


def tokens_now(uids, names):
    return {(uid, n): jti_of_token(token_file(uid, n).read_text().strip()) for uid in uids for n in names}


def other_record_uids(ours):
    return sorted(int(d.name) for d in STATE_DIR.iterdir() if d.name.isdigit() and int(d.name) not in ours) \
        if STATE_DIR.exists() else []


def quiet_refresh(cluster, quiet):
    """refresh with nothing due: hyperfine's figure, the API requests during all
    its runs, the processes it started (strace: fork, vfork, clone of a process)
    and what the helper says it decided."""
    mark = cluster.audit_mark()
    t = hyperfine([HELPER, "refresh", "--config", quiet], REFRESH_RUNS)
    dbg = sh([HELPER, "refresh", "--config", quiet, "--debug"]).stderr
    with tempfile.NamedTemporaryFile(suffix=".strace") as f:
        sh(["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o", f.name, HELPER, "refresh",
            "--config", quiet])
        forks = sum(1 for line in Path(f.name).read_text().splitlines()
                    if ("clone" in line and "CLONE_THREAD" not in line) or "fork(" in line)
    settle(cluster)
    calls = len(pam_calls(cluster, mark))
    said = next((line for line in dbg.splitlines() if "with work due" in line), dbg.strip()[-300:])
    return t, calls, said, forks


def profile_refresh(quiet, out):
    """Where a quiet refresh spends its time: syscalls (strace -c), CPU with
    call stacks (perf, DWARF unwinding: the build has no frame pointers) and
    instructions by function (callgrind)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [HELPER, "refresh", "--config", quiet]
    sh(["strace", "-f", "-c", "-o", out / "refresh.strace", *cmd])
    sh(["strace", "-f", "-e", "trace=%file,%desc,%network", "-o", out / "refresh.calls", *cmd])
    sh(["perf", "record", "-F", "2000", "--call-graph", "dwarf", "-o", out / "refresh.perf", "--", *cmd])
    (out / "refresh.perf.txt").write_text(sh(["perf", "report", "-i", out / "refresh.perf", "--stdio",
                                              "--no-children", "--percent-limit", "1"]).stdout)
    sh(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/refresh.callgrind", *cmd])
    for inclusive in ("yes", "no"):
        (out / f"refresh.callgrind.{'inclusive' if inclusive == 'yes' else 'self'}.txt").write_text(
            sh(["callgrind_annotate", f"--inclusive={inclusive}", out / "refresh.callgrind"]).stdout)
    print(f"   profile of a quiet refresh: {out}")


def due_refresh(cluster, due, uids, names):
    """refresh with every token past its rotation point, run again (as its timer
    would) while it says users are left for the next run: one TokenRequest per
    (user, cluster), each matched to the token it wrote by the audit log's jti;
    the helper's own CPU (its children's too) per rotation."""
    before = tokens_now(uids, names)
    mark = cluster.audit_mark()
    wall, cpu, runs, rc, err = 0.0, 0.0, 0, 0, ""
    while runs < 20:
        w, _, rc, _, err, ru = timed([HELPER, "refresh", "--config", due])
        wall, cpu, runs = wall + w, cpu + ru.ru_utime + ru.ru_stime, runs + 1
        if "left for the next run" not in err:
            break
    settle(cluster)
    calls = pam_calls(cluster, mark)
    after = tokens_now(uids, names)
    issued = collections.Counter(jti_of_event(e) for e in calls if token_request(e))
    owner = {jti: pair for pair, jti in after.items()}
    per_pair = collections.Counter(owner.get(j) for j in issued.elements())
    rotated = sum(before[k] != after[k] for k in after)
    return {"wall": wall, "runs": runs, "cpu": cpu, "cpu_per": cpu / max(1, rotated), "rc": rc, "err": err[-500:],
            "requests": len(calls), "token_requests": sum(issued.values()),
            "other": len(calls) - sum(issued.values()), "rotated": rotated,
            "exactly_one": sum(per_pair[k] == 1 for k in after), "unmatched": per_pair.get(None, 0),
            "pairs": len(after), "sample": [token_file(*k).read_text().strip() for k in list(after)[:3]]}


def rotate_now(cluster, users, quiet):
    """refresh --now USER for a few users: one user's rotation on demand."""
    walls, mark = [], cluster.audit_mark()
    for u in users:
        w, _, rc, _, err, _ = timed([HELPER, "refresh", "--now", u, "--config", quiet])
        assert rc == 0, err
        walls.append(w)
    settle(cluster)
    return stats(walls), sum(1 for e in pam_calls(cluster, mark) if token_request(e)) / len(users)


def bench_refresh(cluster, work):
    tag = secrets.token_hex(2)
    groups = [f"kcbg{tag}-{i}" for i in range(-(-REFRESH_USERS // TEAM))]
    names = [f"r{secrets.token_hex(2)}-{i}" for i in range(REFRESH_CLUSTERS)]
    t0 = time.perf_counter()
    users = make_many_users(REFRESH_USERS, groups)
    uids = [pwd.getpwnam(u).pw_uid for u in users]
    made = time.perf_counter() - t0
    quiet, due = refresh_configs(work, cluster, groups, names)
    holders = Holders(len(users))
    cleanup.append(lambda: close_all(users, quiet))
    t0 = time.perf_counter()
    open_all(users, quiet, holders)
    opened_at = time.perf_counter()
    print(f"   {len(users)} users made in {made:.1f} s, their sessions opened in {opened_at - t0:.1f} s")
    r = {"users": len(users), "groups": groups, "made": made, "opened": opened_at - t0, "others": other_record_uids(set(uids))}
    r["quiet"], r["quiet_calls"], r["said"], r["forks"] = quiet_refresh(cluster, quiet)
    if PROFILE:
        profile_refresh(quiet, PROFILE)
    time.sleep(max(0.0, DUE_AFTER_S + 1 - (time.perf_counter() - opened_at)))  # the last 30 min token is due
    r["due"] = due_refresh(cluster, due, uids, names)
    r["whoami"] = [cluster.whoami(t) for t in r["due"].pop("sample")]
    r["after"], r["after_calls"], r["after_said"], r["after_forks"] = quiet_refresh(cluster, quiet)
    r["now"], r["now_requests"] = rotate_now(cluster, users[:10], quiet)
    r["fleet"], r["fleet_calls"], r["fleet_lists"], r["fleet_forks"] = fleet_refresh(cluster, work, quiet)
    return r, names


def fleet_refresh(cluster, work, quiet):
    """The quiet refresh again with fleet: { namespace }: its one LIST of locks
    per cluster per run is the only request (the host's ConfigMap is written
    by the first run, which is not counted)."""
    ns = f"kc-bench-fleet-{secrets.token_hex(3)}"
    cfg = work / "refresh-fleet.yaml"
    cfg.write_text(f"fleet:\n  namespace: {ns}\n" + Path(quiet).read_text())
    os.chmod(cfg, 0o644)
    # one manifest per cluster name, all for the one test API server: the first is enough for the namespace
    first = re.search(r"^  - name: (\S+)", cfg.read_text(), re.M).group(1)
    manifest = sh([HELPER, "rbac", "--config", cfg, "--cluster", first], check=True).stdout
    sh(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "apply", "-f", "-"], input=manifest, check=True)
    cleanup.append(lambda: sh(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, "delete", "namespace", ns,
                               "--wait=false"]))
    first_run = sh([HELPER, "refresh", "--config", cfg])
    assert first_run.returncode == 0, first_run.stderr
    settle(cluster)
    mark = cluster.audit_mark()
    t = hyperfine([HELPER, "refresh", "--config", cfg], REFRESH_RUNS)
    with tempfile.NamedTemporaryFile(suffix=".strace") as f:
        sh(["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o", f.name, HELPER, "refresh",
            "--config", cfg])
        forks = sum(1 for line in Path(f.name).read_text().splitlines()
                    if ("clone" in line and "CLONE_THREAD" not in line) or "fork(" in line)
    settle(cluster)
    calls = pam_calls(cluster, mark)
    lists = sum(1 for e in calls if e["verb"] == "list" and e["objectRef"].get("resource") == "configmaps")
    return t, len(calls), lists, forks


def section_refresh(cluster, work, user, cfg, md):
    print(f"== 11: refresh over {REFRESH_USERS} open sessions")
    r, names = bench_refresh(cluster, work)
    d, q, a = r["due"], r["quiet"], r["after"]
    n, c = r["users"], len(names)
    md += ["## refresh over many open sessions", "",
           f"{n:,} users (written to the account files in one go, each with its own group and home, and members of "
           f"one of {len(r['groups'])} teams of {TEAM} (groups); the mapping has one `group:` rule per team and "
           f"cluster), each with one open session: `pam-kubeconfig open --user U --session s1 --config C --pid P "
           f"--deadline {DEADLINE_MS}` for real, {OPENERS} at a time ({r['opened']:.1f} s for all), the records' "
           f"`--pid` each its own live process (`cpu_bench holders N`), so every session is in the index of open "
           f"sessions and checked alive by every run. {c} clusters per user (distinct names, the one test API "
           f"server): {n * c:,} grants, {n * c:,} token files. The config: `token: {{ttl: 30m}}` (rotation at 80 % "
           f"of the life). The state directory held records of {len(r['others'])} other uid(s) as well (other "
           f"runs'; refresh reads them too).", "",
           f"Nothing due: `hyperfine -N --warmup 3 --runs {REFRESH_RUNS} 'pam-kubeconfig refresh --config C'`; "
           f"processes started counted by `strace -f` (fork, vfork, clone without `CLONE_THREAD`).", "",
           "| refresh, nothing due | median | mean | min | max | API requests (all runs) | processes started |",
           "|---|---|---|---|---|---|---|",
           f"| right after the logins | {ms(q['median'])} | {ms(q['mean'])} | {ms(q['min'])} | {ms(q['max'])} | "
           f"{r['quiet_calls']} | {r['forks']} |",
           f"| right after the rotation below | {ms(a['median'])} | {ms(a['mean'])} | {ms(a['min'])} | "
           f"{ms(a['max'])} | {r['after_calls']} | {r['after_forks']} |", "",
           f"The helper's own account (`--debug`): `{r['said'].strip()}`.", "",
           f"Everything due: the same sessions, {DUE_AFTER_S + 1} s after the last mint, `pam-kubeconfig refresh "
           f"--config C'` where C' says `ttl: 24h` and `refresh_before: {DUE_BEFORE}%` (the 30 min tokens are due "
           f"{DUE_AFTER_S} s after their mint, the 24 h tokens it mints only {24 * 60 * (100 - DUE_BEFORE) // 100} "
           f"min after theirs: each pair is due exactly once however long the runs take), timed from exec to exit "
           f"and run again, as its timer would, while it says users are left for the next run (each run has a 45 s "
           f"deadline); the audit log's `issued-credential-id` (the jti) of each TokenRequest matched to the token "
           f"file it wrote.", "", "| | |", "|---|---|",
           f"| wall (runs: {d['runs']}, last exit status {d['rc']}) | {d['wall']:.2f} s ({ms(d['wall'] / n)} per "
           f"user) |",
           f"| the helper's CPU (user + system, with its children) | {d['cpu']:.2f} s, **{ms(d['cpu_per'])} per "
           f"rotation** |",
           f"| TokenRequests | {d['token_requests']:,} for {d['pairs']:,} (user, cluster) pairs |",
           f"| pairs with exactly one TokenRequest, matched by jti | {d['exactly_one']:,} |",
           f"| TokenRequests matching no token file | {d['unmatched']} |",
           f"| other API requests | {d['other']} |",
           f"| token files rotated | {d['rotated']:,} |",
           f"| new tokens accepted (a sample of 3) | {sum(w == 'system:serviceaccount:team-a:alice' for w in r['whoami'])}"
           f" of {len(r['whoami'])} |", "",
           f"`refresh --now USER` (10 users, one at a time): median {ms(r['now']['median'])}, "
           f"{r['now_requests']:.2f} TokenRequests per call ({c} clusters).", ""]
    if d["rc"] != 0:
        md += [f"refresh said: `{d['err'].strip()}`", ""]
    fq, runs = r["fleet"], REFRESH_RUNS + 4  # hyperfine's warmup 3 and runs, and the strace run
    md += [f"With `fleet:` (the same sessions and config plus `fleet: {{ namespace }}`), nothing due: median "
           f"{ms(fq['median'])} (min {ms(fq['min'])}, max {ms(fq['max'])}); API requests over {runs} runs: "
           f"{r['fleet_calls']}, of which {r['fleet_lists']} LISTs of the locks ({c} clusters); processes started: "
           f"{r['fleet_forks']}.", ""]
    target(f"refresh over {n:,} open sessions, nothing due: median <= 150 ms (issue 24)", q["median"] <= 0.150,
           ms(q["median"]))
    target(f"with fleet: refresh over {n:,} sessions, nothing due: median <= 150 ms, one LIST per cluster, "
           f"no fork", fq["median"] <= 0.150 and r["fleet_calls"] == r["fleet_lists"] == runs * c
           and r["fleet_forks"] == 0,
           f"{ms(fq['median'])}, {r['fleet_calls']} requests ({r['fleet_lists']} LISTs) over {runs} runs x {c} "
           f"clusters, {r['fleet_forks']} processes")
    target("refresh with nothing due makes 0 API requests and starts no process (issue 24)",
           r["quiet_calls"] == 0 and r["after_calls"] == 0 and r["forks"] == 0 and r["after_forks"] == 0,
           f"{r['quiet_calls']} and {r['after_calls']} requests over {2 * (REFRESH_RUNS + 5)} runs, "
           f"{r['forks']} and {r['after_forks']} processes")
    target("everything due: exactly one TokenRequest per (user, cluster)",
           d["exactly_one"] == d["pairs"] and d["token_requests"] == d["pairs"] and d["rc"] == 0,
           f"{d['exactly_one']:,} of {d['pairs']:,} pairs, {d['token_requests']:,} TokenRequests, "
           f"{d['wall']:.1f} s in {d['runs']} runs, {ms(d['cpu_per'])} of helper CPU per rotation")


# ---- 12: the cut against ss -K ---------------------------------------------------------------

CUT_RUNS = int(os.environ.get("BENCH_CUT_RUNS", "7"))
HOLD_SCRIPT = """
import socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.connect(("127.0.0.1", int(sys.argv[1])))
    socks.append(s)
print("held", len(socks), flush=True)
sys.stdin.read()
"""


class Listener:
    """A loopback server that accepts every connection and keeps it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=8192)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        # The list is looked up after accept() returns, under the lock: the
        # thread used to hold the list of the round before while it waited,
        # and the next round's first connection went into it, to be closed
        # with it when it was collected ("99 of 100 established").
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)

    def drop(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            c.close()


def established(port):
    p = sh(["ss", "-Htn", "state", "established", "dst", f"127.0.0.1:{port}"])
    return len(p.stdout.splitlines())


def hold(pw, port, n):
    """A process of the user's holding n established connections to the listener."""
    import resource

    def limits():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
    p = subprocess.Popen(["python3", "-c", HOLD_SCRIPT, str(port), str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                         preexec_fn=limits)
    line = p.stdout.readline()
    assert line.startswith(f"held {n}"), line
    assert wait_established(port, n), f"{established(port)} of {n} established"
    return p


def wait_established(port, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if established(port) == n:
            return True
        time.sleep(0.05)
    return False


def bench_cut(cluster, work):
    import resource
    user = make_user("kcx")
    pw = pwd.getpwnam(user)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 12000), max(hard, 12000)))
    listener = Listener()
    cleanup.append(listener.sock.close)
    url = f"https://127.0.0.1:{listener.port}"
    out = {}
    for n in (100, 5000):
        r = {"ours": [], "inside": [], "ss": []}
        for _ in range(CUT_RUNS):
            for who in ("ours", "ss"):
                p = hold(pw, listener.port, n)
                if who == "ours":
                    w, _, rc, so, err, _ = timed([SOCKCUT, pw.pw_uid, url])
                    assert rc == 0, err
                    m = re.match(r"cut (\d+) in (\d+) us", so)
                    assert m and int(m.group(1)) == n, so
                    r["inside"].append(int(m.group(2)) / 1e6)
                else:
                    w, _, rc, so, err, _ = timed(["ss", "-K", "-Htn", "dst", f"127.0.0.1:{listener.port}"])
                    assert rc == 0, err
                r[who].append(w)
                left = established(listener.port)
                assert left == 0, f"{who}: {left} of {n} connections left"
                p.stdin.close()
                p.wait()
                listener.drop()
        out[n] = {k: stats(v) for k, v in r.items()}
    return out


def section_cut(cluster, work, user, cfg, md):
    print("== 12: the cut against ss -K")
    r = bench_cut(cluster, work)
    md += ["## The cut of a user's connections, against `ss -K`", "",
           f"A process of the user's holds N established TCP connections to a loopback listener; then either the "
           f"helper's cut (`kc_sockcut`: every socket of that uid to that address and port, destroyed with "
           f"sock_diag `SOCK_DESTROY`) in a process of its own (`build/tests/kc-sockcut UID URL`, which loads only what "
           f"the cut needs, as `ss` does, and also reports the time inside the call, what a logout spends), or "
           f"`ss -K -Htn dst 127.0.0.1:PORT` on the "
           f"same kind of sockets. Afterwards `ss` must find none established. {CUT_RUNS} runs of each, "
           f"interleaved.", "",
           "| streams | our cut (process) | inside the helper | `ss -K` (process) | ours / `ss -K` |",
           "|---|---|---|---|---|"]
    for n, v in r.items():
        md.append(f"| {n:,} | {ms(v['ours']['median'])} | {ms(v['inside']['median'])} | {ms(v['ss']['median'])} | "
                  f"{v['ours']['median'] / v['ss']['median']:.2f} |")
    md.append("")
    for n, v in r.items():
        ratio = v["ours"]["median"] / v["ss"]["median"]
        target(f"the cut of {n:,} streams takes no longer than ss -K on them (process against process, 1.2x)",
               ratio <= 1.2, f"{ratio:.2f} ({ms(v['ours']['median'])} vs {ms(v['ss']['median'])})")
