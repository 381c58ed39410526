"""Metrics for Prometheus (issue 26): the real node_exporter (Debian's
prometheus-node-exporter, on a loopback port, textfile collector only) serves
pam_kubeconfig.prom as refresh writes it. After a scripted set of logins, a failed
cluster, a revocation that stays pending, a cut and a refresh, every value it
serves is what happened, counted independently (exit statuses, the API server's
audit log, the connections a stand-in accepted, the sockets ss saw, the grant
files and the index of open sessions); so with logins racing refreshes.
promtool (Debian's prometheus) finds the exposition and the shipped rules clean;
a symlinked textfile directory is refused and `check` says why."""
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, STATE_DIR, Background, end_process, helper, kubeconfig_of, run, security

EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
RULES_FILE = REPO / "config" / "prometheus" / "pam_kubeconfig.rules.yml"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """node_exporter with the textfile collector alone, on a free loopback port."""

    def __init__(self, directory):
        self.port = free_port()
        self.bg = Background([EXPORTER, f"--web.listen-address=127.0.0.1:{self.port}", "--collector.disable-defaults",
                              "--collector.textfile", f"--collector.textfile.directory={directory}"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.text()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("node_exporter did not start: " + self.bg.text())

    def text(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def scrape(self):
        """{series: value} of pam_kubeconfig_* and node_textfile_scrape_error."""
        out = {}
        for line in self.text().splitlines():
            if line.startswith(("pam_kubeconfig_", "node_textfile_scrape_error")):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self):
        end_process(self.bg.p)


class Refuser:
    """A cluster that fails: it accepts a connection and closes it at once.
    It counts the connections, each one helper's attempt."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def metrics_dir():
    base = Path(tempfile.mkdtemp(prefix="kc-metrics.", dir="/usr/local/lib"))
    os.chmod(base, 0o755)
    d = base / "node-exporter"
    d.mkdir(mode=0o755)
    yield d
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def exporter(metrics_dir):
    e = Exporter(metrics_dir)
    yield e
    e.stop()


def config(workdir, metrics_dir, down_port=None, down_user=None):
    clusters = [workdir.cluster_entry("test")]
    rules = ('  - user: "*"\n    cluster: test\n    serviceaccount: bastion-users/u-{user_safe}\n'
             "    create: true\n    clusterrole: view\n")
    if down_port:
        clusters.append(workdir.cluster_entry("down", server=f"https://127.0.0.1:{down_port}"))
        rules += f"  - user: {down_user}\n    cluster: down\n    serviceaccount: bastion-users/u-{{user_safe}}\n"
    return workdir.write_config(rules, clusters=clusters, extra=f"metrics:\n  textfile_dir: {metrics_dir}\n")


def login(user, cfg):
    s = secrets.token_hex(8)
    p = helper("open", "--user", user, "--session", s, "--config", cfg, "--pid", str(os.getpid()))
    return s, p.returncode


def logout(users, user, cfg, s):
    return helper("close", "--user", user, "--uid", str(users.uid(user)), "--session", s, "--config", cfg,
                  "--pid", str(os.getpid())).returncode


def refresh(cfg, ok=None):
    """One refresh run; ok: whether every user's work succeeded (u3's pending
    revocation on the failing cluster makes it 1, and the run still ends;
    None: whatever other tests' users left)."""
    p = helper("refresh", "--config", cfg)
    assert ok is None or p.returncode == (0 if ok else 1), p.stderr
    return p


def delta(after, before, series):
    return after.get(series, 0) - before.get(series, 0)


def api_counts(cluster, mark, users_):
    """The API server's own answers since mark: TokenRequests for our users'
    ServiceAccounts that it granted, and deletions of the Secrets our helpers
    made since then that it confirmed (dry runs aside)."""
    names = {f"u-{u}" for u in users_}
    made, mints, deletes = set(), 0, 0
    events = [ev for ev in cluster.audit_events(mark) if ev.get("stage") == "ResponseComplete"]
    for ev in events:
        ref, code = ev.get("objectRef") or {}, (ev.get("responseStatus") or {}).get("code")
        if ev["verb"] == "create" and ref.get("subresource") == "token" and ref.get("name") in names and code == 201:
            mints += 1
        if ev["verb"] == "create" and ref.get("resource") == "secrets" and not ref.get("subresource") and code == 201:
            made.add((ref.get("namespace"), ref.get("name")))
    for ev in events:
        ref, code = ev.get("objectRef") or {}, (ev.get("responseStatus") or {}).get("code")
        if (ev["verb"] == "delete" and ref.get("resource") == "secrets" and code == 200
                and "dryRun" not in ev.get("requestURI", "") and (ref.get("namespace"), ref.get("name")) in made):
            deletes += 1
    return mints, deletes


def pending_on_disk(clusters=("test", "down")):
    """Pending revocations in every user's grant files, and the oldest's since."""
    n, oldest = 0, None
    for g in STATE_DIR.glob("*/grant-*.json"):
        try:
            d = json.loads(g.read_text())
        except (OSError, ValueError):
            continue
        if d.get("state") == "revoke" and d.get("cluster") in clusters:
            n += 1
            since = d.get("since")
            if isinstance(since, str):
                since = time.mktime(time.strptime(since, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            oldest = since if oldest is None or (since and since < oldest) else oldest
    return n, oldest


def boot_id():
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]


def live_sessions():
    """Open sessions by the index under /var/lib/pam_kubeconfig/live (their
    process alive, this boot), and the users holding them."""
    sessions, uids = 0, set()
    for e in (STATE_DIR / "live").iterdir() if (STATE_DIR / "live").exists() else []:
        try:
            uid, pid, start, boot = e.name.split(".")[:4]
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (ValueError, OSError):
            continue
        if stat[19] == start and boot == boot_id():
            sessions += 1
            uids.add(uid)
    return sessions, len(uids)


def sockets_of(uid, port):
    out = run(["ss", "-Htne", "state", "established", f"( dport = :{port} )"]).stdout
    return sum(1 for l in out.splitlines() if f"uid:{uid} " in l + " ")


@security("node_exporter serves pam-kubeconfig's metrics exactly as it happened: logins, logouts, mints and "
          "revocations by cluster and result, a failed cluster, a pending revocation and its age, connections "
          "cut, sessions and users held, the last refresh; promtool finds them and the shipped rules clean")
def test_node_exporter_serves_what_happened(cluster, workdir, users, metrics_dir, exporter):
    down = Refuser()
    u1, u2, u3 = users.make(), users.make(), users.make()
    cfg = config(workdir, metrics_dir, down.port, u3)
    refresh(cfg)
    before = exporter.scrape()
    assert before["node_textfile_scrape_error"] == 0
    mark = cluster.audit_mark()
    opens, closes = [], []

    # Logins: u1 twice (one token serves both), u2, and u3, whose second cluster fails.
    s1, rc = login(u1, cfg); opens.append(rc)
    s1b, rc = login(u1, cfg); opens.append(rc)
    s2, rc = login(u2, cfg); opens.append(rc)
    accepted = down.accepted
    s3, rc = login(u3, cfg); opens.append(rc)
    down_mints = down.accepted - accepted
    assert down_mints == 1
    # u2 watches, and is cut at logout.
    watch = Background(["runuser", "-u", u2, "--", "env", f"KUBECONFIG={kubeconfig_of(users, u2)}",
                        "kubectl", "get", "configmaps", "-n", "bastion-users", "--watch"])
    server_port = int(cluster.server.rsplit(":", 1)[1])
    deadline = time.monotonic() + 20
    while sockets_of(users.uid(u2), server_port) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    held = sockets_of(users.uid(u2), server_port)
    assert held >= 1
    closes.append(logout(users, u2, cfg, s2))
    watch.stop()
    closes.append(logout(users, u1, cfg, s1))  # u1 keeps s1b
    accepted = down.accepted
    closes.append(logout(users, u3, cfg, s3))  # its Secret on "down" cannot be deleted: pending
    down_deletes = down.accepted - accepted
    t0 = time.time()
    p = refresh(cfg, ok=False)
    assert "cluster down: skipped: it failed less than 30s ago" in p.stderr, p.stderr
    t1 = time.time()
    after = exporter.scrape()
    down.close()

    mints, deletes = api_counts(cluster, mark, [u1, u2, u3])
    n_pending, oldest = pending_on_disk()
    sessions, holders = live_sessions()
    assert after["node_textfile_scrape_error"] == 0
    assert delta(after, before, 'pam_kubeconfig_logins_total{result="success"}') == opens.count(0) == 4
    assert delta(after, before, 'pam_kubeconfig_logins_total{result="failure"}') == 4 - opens.count(0)
    assert delta(after, before, 'pam_kubeconfig_logouts_total{result="success"}') == closes.count(0) == 2
    assert delta(after, before, 'pam_kubeconfig_logouts_total{result="failure"}') == closes.count(1) == 1
    assert delta(after, before, 'pam_kubeconfig_mints_total{cluster="test",result="success"}') == mints == 3
    assert delta(after, before, 'pam_kubeconfig_mints_total{cluster="test",result="failure"}') == 0
    assert delta(after, before, 'pam_kubeconfig_mints_total{cluster="down",result="failure"}') == down_mints
    assert delta(after, before, 'pam_kubeconfig_mint_duration_seconds_count{cluster="test"}') == mints
    assert delta(after, before, 'pam_kubeconfig_revocations_total{cluster="test",result="success"}') == deletes == 2
    assert delta(after, before, 'pam_kubeconfig_revocations_total{cluster="down",result="failure"}') == down_deletes
    assert delta(after, before, 'pam_kubeconfig_connections_cut_total{cluster="test"}') == held
    assert after["pam_kubeconfig_pending_revocations"] == n_pending >= 1
    assert abs(after["pam_kubeconfig_pending_revocation_oldest_age_seconds"] - (t1 - oldest)) <= 3
    assert (after["pam_kubeconfig_sessions"], after["pam_kubeconfig_users"]) == (sessions, holders)
    assert t0 - 1 <= after["pam_kubeconfig_last_refresh_success_timestamp_seconds"] <= t1 + 1
    assert not [k for k in after for u in (u1, u2, u3) if u in k or 'user="' in k]  # no user in a label

    # What node_exporter serves is our file as written; promtool finds it clean.
    prom = (metrics_dir / "pam_kubeconfig.prom")
    assert oct(prom.stat().st_mode & 0o777) == "0o644" and prom.stat().st_uid == 0
    p = run([PROMTOOL, "check", "metrics"], check=False, input=prom.read_text())
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    p = run([PROMTOOL, "check", "rules", RULES_FILE], check=False)
    assert p.returncode == 0 and "SUCCESS: 5 rules found" in p.stdout, p.stdout + p.stderr
    logout(users, u1, cfg, s1b)


@security("counts survive logins racing refresh runs: none is lost and none counted twice")
def test_logins_racing_refreshes_count_exactly(cluster, workdir, users, metrics_dir, exporter):
    names = [users.make() for _ in range(10)]
    cfg = config(workdir, metrics_dir)
    refresh(cfg)
    before = exporter.scrape()
    mark = cluster.audit_mark()
    results, runs, stop, began = [], [], threading.Event(), threading.Condition()
    started = [0]

    def refresher():
        while not stop.is_set():
            with began:
                started[0] += 1
                began.notify_all()
            t = time.monotonic()
            helper("refresh", "--config", cfg)
            runs.append((t, time.monotonic()))

    def one(u):
        t = time.monotonic()
        s, rc = login(u, cfg)
        results.append((u, s, rc, t, time.monotonic()))

    def runs_begin(n):
        with began:
            assert began.wait_for(lambda: started[0] >= n, timeout=60), "refresh runs stopped"
        return started[0]

    r = threading.Thread(target=refresher)
    r.start()
    # Three waves of logins, each let go once another refresh run has begun
    # after the first wave started: at least two runs overlap the logins,
    # however long one run takes.
    threads = [threading.Thread(target=one, args=(u,)) for u in names]
    n = runs_begin(1)
    for i, t in enumerate(threads):
        if i in (4, 7):
            n = runs_begin(n + 1)
        t.start()
    for t in threads:
        t.join()
    closes = [logout(users, u, cfg, s) for u, s, *_ in results]
    stop.set()
    r.join()
    refresh(cfg)
    after = exporter.scrape()
    mints, deletes = api_counts(cluster, mark, names)
    assert [r[2] for r in results] == [0] * len(names)
    # They raced: refresh runs began and ended while logins were under way.
    first, last = min(r[3] for r in results), max(r[4] for r in results)
    assert len([1 for a, b in runs if a < last and b > first]) >= 2, (runs, first, last)
    assert delta(after, before, 'pam_kubeconfig_logins_total{result="success"}') == len(names)
    assert delta(after, before, 'pam_kubeconfig_logouts_total{result="success"}') == closes.count(0) == len(names)
    assert delta(after, before, 'pam_kubeconfig_mints_total{cluster="test",result="success"}') == mints == len(names)
    assert delta(after, before, 'pam_kubeconfig_revocations_total{cluster="test",result="success"}') == deletes \
        == len(names)


@security("a textfile directory reached through a symbolic link is refused (root writes a world-readable file "
          "there), and check says why")
def test_a_symlinked_textfile_directory_is_refused(cluster, workdir, users, metrics_dir):
    real = metrics_dir.parent / "elsewhere"
    real.mkdir(mode=0o755)
    link = metrics_dir.parent / "node-exporter-link"
    link.symlink_to(real)
    cfg = config(workdir, link)
    p = helper("refresh", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert f"{link} is a symbolic link; not followed" in p.stderr, p.stderr
    assert list(real.iterdir()) == []
    p = helper("check", "--config", cfg)
    assert f"warning: metrics.textfile_dir {link}: {link} is a symbolic link; not followed" in p.stderr, p.stderr
    # The real directory named itself is accepted.
    cfg = config(workdir, metrics_dir)
    p = helper("check", "--config", cfg)
    assert f"ok: refresh and gc write the metrics to {metrics_dir}/pam_kubeconfig.prom" in p.stderr, p.stderr
