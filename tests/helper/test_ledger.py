"""The root ledger (issue 26): a torn last line is never read as a record and the
next append starts on a line of its own; logrotate rotating it while logins
append loses no line; a full disk stops mints, never revocations. Each test has
a tmpfs of its own on /var/log/pam_kubeconfig (conftest.PrivateLedger)."""
import json
import os
import secrets
import subprocess
import threading
import time

from conftest import REPO, helper, our_secrets, run, security, token_path, user_token

RULE = """  - user: "*"
    cluster: test
    serviceaccount: bastion-users/u-{user_safe}
    create: true
    clusterrole: view
"""
LOGROTATE_CONF = REPO / "config" / "logrotate" / "pam-kubeconfig"


def login(user, cfg, rhost="192.0.2.1", check=True):
    session = secrets.token_hex(8)
    p = helper("open", "--user", user, "--session", session, "--config", cfg, "--rhost", rhost,
               "--pid", str(os.getpid()))
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return session, p


def logout(users, user, cfg, session):
    return helper("close", "--user", user, "--uid", str(users.uid(user)), "--session", session, "--config", cfg,
                  "--pid", str(os.getpid()))


@security("a ledger line torn by a failed write is never read as a record, and the next append starts on a "
          "line of its own")
def test_a_torn_last_line_is_closed_and_skipped(cluster, workdir, users, private_ledger):
    ledger = private_ledger()
    a, b = users.make(), users.make()
    cfg = workdir.write_config(RULE)
    login(a, cfg)
    good = len(ledger.lines())
    torn = ('{"time":"2026-01-01T00:00:00Z","host":"torn","event":"mint","user":"%s","jti":"torn-' % b).encode()
    with open(ledger.path, "ab") as f:  # what a write cut short leaves (a kill cannot: one write() a line)
        f.write(torn)
    session, _ = login(b, cfg)
    raw = ledger.path.read_bytes()
    assert torn + b"\n" in raw  # closed before the next line
    lines = raw.decode().splitlines()
    assert lines[good] == torn.decode()
    after = [json.loads(l) for l in lines[good + 1:]]  # every later line whole
    assert [(r["event"], r["user"]) for r in after] == [("login", b), ("mint", b)], after
    assert after[0]["sessions"] == [{"id": session, "rhost": "192.0.2.1"}]
    # audit reads every other line and skips the torn one.
    p = helper("audit", "--audit-log", cluster.audit_log, "--output", "json")
    assert p.returncode == 0, p.stderr
    src = json.loads(p.stdout)["sources"][0]
    assert (src["kind"], src["records"], src["skipped"]) == ("ledger", len(lines) - 1, 1), src
    assert "torn-" not in p.stdout


@security("logrotate rotating the ledger (rename, delaycompress, never copytruncate) while logins append to it "
          "loses no line and tears none")
def test_logrotate_during_logins_loses_no_line(cluster, workdir, users, private_ledger, tmp_path):
    ledger = private_ledger()
    names = [users.make() for _ in range(3)]
    cfg = workdir.write_config(RULE)
    cycles = 10
    done = threading.Event()
    rotations = []

    def rotate():
        state = tmp_path / "logrotate.state"
        while not done.is_set():
            p = run(["logrotate", "-f", "-s", state, LOGROTATE_CONF], check=False)
            rotations.append(p.returncode)
            time.sleep(0.15)

    sessions = {u: [] for u in names}
    failures = []

    def user_cycles(u):
        for _ in range(cycles):
            s, p = login(u, cfg, check=False)
            c = logout(users, u, cfg, s)
            if p.returncode or c.returncode:
                failures.append((u, p.stderr, c.stderr))
            sessions[u].append(s)

    rotator = threading.Thread(target=rotate)
    rotator.start()
    workers = [threading.Thread(target=user_cycles, args=(u,)) for u in names]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    rotator.join()
    assert not failures, failures
    files = [p.name for p in ledger.dir.iterdir() if p.name.startswith("ledger.jsonl")]
    assert rotations.count(0) >= 3 and len(files) >= 4, (rotations, files)  # rotated while they appended
    assert any(f.endswith(".gz") for f in files), files
    records = ledger.records()  # every line of every rotation parses: none torn
    assert len(records) == len(names) * cycles * 4, len(records)  # login, mint, logout, revoke per cycle
    for u in names:
        mine = [r for r in records if r.get("user") == u]
        by_event = {e: [r for r in mine if r["event"] == e] for e in ("login", "mint", "logout", "revoke")}
        for e in ("login", "mint", "logout"):
            assert sorted(r["sessions"][0]["id"] for r in by_event[e]) == sorted(sessions[u]), (u, e)
        assert len(by_event["revoke"]) == cycles
    # audit reads the same lines back from the rotations, .gz included.
    p = helper("audit", "--audit-log", cluster.audit_log, "--output", "json")
    assert p.returncode == 0, p.stderr
    src = json.loads(p.stdout)["sources"][0]
    assert (src["records"], src["skipped"], src["files"]) == (len(records), 0, len(files)), src


@security("a full disk under the ledger stops mints (no token is handed out without its line) and never "
          "revocations: a logout still deletes the Secret and its tokens are refused")
def test_a_full_disk_stops_mints_not_revocations(cluster, workdir, users, private_ledger, syslog):
    ledger = private_ledger(size="64k")
    holder, newcomer = users.make(), users.make()
    cfg = workdir.write_config(RULE)
    held, _ = login(holder, cfg)
    token = user_token(users, holder)
    assert cluster.whoami(token) == f"system:serviceaccount:bastion-users:u-{holder}"
    # Rotated away first (as logrotate does), so the next line needs a page of its own.
    ledger.path.rename(ledger.dir / "ledger.jsonl.1")
    filler = ledger.dir / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
    assert os.statvfs(ledger.dir).f_bavail == 0

    # A mint whose line cannot be written is not handed out.
    session, p = login(newcomer, cfg, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "MESSAGE=cluster test is unavailable" in p.stdout
    assert "not handed out: the audit ledger cannot record it" in p.stderr and "No space left" in p.stderr, p.stderr
    assert not token_path(users, newcomer).exists()
    # Its Secret stays recorded, so the logout after the failed open revokes it.
    assert logout(users, newcomer, cfg, session).returncode == 0
    assert our_secrets(cluster, user=newcomer) == []

    # A revocation does not wait on the ledger: the logout revokes, and says the lines it lost.
    c = logout(users, holder, cfg, held)
    assert c.returncode == 0, c.stderr
    assert "ledger: a revoke line is lost" in c.stderr and "ledger: a logout line is lost" in c.stderr, c.stderr
    assert our_secrets(cluster, user=holder) == []
    cluster.wait_refused(token)
    assert not ledger.path.exists() or ledger.path.read_bytes() == b""  # no torn line left behind either

    filler.unlink()
    session, _ = login(newcomer, cfg)
    assert [r["event"] for r in ledger.records()[-2:]] == ["login", "mint"]
    assert logout(users, newcomer, cfg, session).returncode == 0
