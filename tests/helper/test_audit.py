"""The audit trail: every mint names the logins its token serves (refreshes
included), in the root ledger and in syslog, and `pam-kubeconfig audit` joins the
API server's audit log with what only root can have written (the ledger, journal
entries of root's helper; syslog text only when told to trust it) so each API
request is traced to its Unix logins, and a forged line changes nothing."""
import json
import os
import re
import secrets
import time

from conftest import HELPER, helper, kubeconfig_of, kubectl_as, run, security

RULE = """  - user: "*"
    cluster: test
    serviceaccount: bastion-users/u-{user_safe}
    create: true
    clusterrole: view
"""
# 10 minutes, rotated once 1% of it has passed: a refresh after 8 s renews.
FAST_REFRESH = "token:\n  ttl: 10m\n  refresh_before: 99%\n"


def login(user, cfg, rhost):
    session = secrets.token_hex(6)
    p = helper("open", "--user", user, "--session", session, "--config", cfg, "--rhost", rhost,
               "--service", "sshd", "--tty", "pts/7", "--pid", str(os.getpid()))
    assert p.returncode == 0, p.stderr
    return session


def logout(user, cfg, session):
    assert helper("close", "--user", user, "--session", session, "--config", cfg,
                  "--pid", str(os.getpid())).returncode == 0


def call(users, user, name):
    """One API request the audit log can tell apart: a get of a ConfigMap by name."""
    kubectl_as(user, kubeconfig_of(users, user), "get", "configmap", name)


def report_groups(text):
    """audit's output: blocks of login lines, then the requests made with
    tokens that served exactly those logins."""
    groups = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        logins = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in lines if l.startswith("login ")]
        uris = [re.search(r" uri=(\S+)", l).group(1) for l in lines if l.startswith("  request ")]
        groups.append((frozenset(l["session"] for l in logins), logins, uris))
    return groups


@security("every API request made with a login's tokens, refreshes included, is traced to that Unix login "
          "(user, rhost, session, start, end) by pam-kubeconfig audit, from the root ledger")
def test_audit_traces_requests_to_logins(cluster, workdir, users, syslog, private_ledger):
    private_ledger()
    tag = secrets.token_hex(3)
    a, b = users.make(), users.make()
    cfg = workdir.write_config(RULE, extra=FAST_REFRESH)
    syslog.clear()

    # The log lines have whole seconds: a second apart, each call is told
    # apart from the logins around it.
    s1 = login(a, cfg, "198.51.100.1")
    call(users, a, f"a-s1-{tag}")
    time.sleep(1.1)
    s2 = login(a, cfg, "198.51.100.2")  # a's token file serves both logins from now on
    call(users, a, f"a-s1s2-{tag}")
    s3 = login(b, cfg, "203.0.113.3")
    call(users, b, f"b-{tag}")
    time.sleep(8)
    assert helper("refresh", "--config", cfg).returncode == 0
    call(users, a, f"a-refreshed-{tag}")
    time.sleep(1.1)
    logout(a, cfg, s1)
    logout(a, cfg, s2)
    logout(b, cfg, s3)

    log = syslog.text()
    # The mint lines say which logins each token serves, refreshes included.
    mints = [l for l in log.splitlines() if f"mint user={a} " in l]
    assert re.search(rf"reason=login sessions={s1} rhosts=198\.51\.100\.1 ", mints[0]), mints[0]
    assert re.search(rf"reason=rotation sessions=({s1},{s2}|{s2},{s1}) "
                     r"rhosts=(198\.51\.100\.1,198\.51\.100\.2|198\.51\.100\.2,198\.51\.100\.1) time=",
                     mints[-1]), mints[-1]
    assert "session=refresh" not in log
    for line in mints:
        assert re.search(r" jti=[0-9a-f-]{36} expires=\S+Z lifetime=\S+ ", line), line
    assert re.search(rf"login user={a} uid={users.uid(a)} session={s2} rhost=198\.51\.100\.2 service=sshd "
                     r"tty=pts/7 time=\S+Z", log)
    assert re.search(rf"logout user={a} uid={users.uid(a)} session={s1} time=\S+Z", log)

    # audit reads the ledger by default: the syslog lines above are not needed.
    p = helper("audit", "--audit-log", cluster.audit_log)
    assert p.returncode == 0, p.stderr
    assert "trusted: the ledger /var/log/pam_kubeconfig/ledger.jsonl" in p.stderr
    groups = {sessions: (logins, uris) for sessions, logins, uris in report_groups(p.stdout)}

    def requests_of(sessions):
        return {u for u in groups[frozenset(sessions)][1] if tag in u}

    assert requests_of([s1]) == {f"/api/v1/namespaces/bastion-users/configmaps/a-s1-{tag}"}
    assert requests_of([s1, s2]) == {f"/api/v1/namespaces/bastion-users/configmaps/a-s1s2-{tag}",
                                     f"/api/v1/namespaces/bastion-users/configmaps/a-refreshed-{tag}"}
    assert requests_of([s3]) == {f"/api/v1/namespaces/bastion-users/configmaps/b-{tag}"}
    # Each login line: user, rhost, session, start and end.
    logins = {l["session"]: l for sessions, (ls, _) in groups.items() for l in ls}
    assert (logins[s1]["user"], logins[s1]["rhost"]) == (a, "198.51.100.1")
    assert (logins[s2]["user"], logins[s2]["rhost"]) == (a, "198.51.100.2")
    assert (logins[s3]["user"], logins[s3]["rhost"]) == (b, "203.0.113.3")
    for l in logins.values():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", l["start"]) and l["start"] <= l["end"], l
    # No request of one user lands with another's logins.
    owner = {f"a-s1-{tag}": a, f"a-s1s2-{tag}": a, f"a-refreshed-{tag}": a, f"b-{tag}": b}
    for ls, uris in groups.values():
        for u in uris:
            if u.rsplit("/", 1)[1] in owner:
                assert {l["user"] for l in ls} == {owner[u.rsplit("/", 1)[1]]}, (ls, u)


def journal_entries(syslog_text, exe=None, uid_of=None):
    """The helper's captured syslog lines as journald records them: _UID=0 and
    _EXE the helper's path for its own lines; a line another program sent (no
    [PID]: logger) gets that user's uid and /usr/bin/logger."""
    out = []
    for line in syslog_text.splitlines():
        m = re.search(r"pam-kubeconfig(\[\d+\])?: (.*)$", line)
        if not m:
            continue
        ours = bool(m.group(1))
        out.append({"__CURSOR": f"s=x;i={len(out)}", "_UID": "0" if ours else str(uid_of),
                    "_EXE": exe or os.path.realpath(HELPER) if ours else "/usr/bin/logger",
                    "_HOSTNAME": os.uname().nodename, "SYSLOG_IDENTIFIER": "pam-kubeconfig", "MESSAGE": m.group(2)})
    return out


def as_export(entries):
    return "\n\n".join("\n".join(f"{k}={v}" for k, v in e.items()) for e in entries) + "\n"


def as_json(entries):
    return "\n".join(json.dumps(e) for e in entries) + "\n"


def empty_ledger(tmp_path):
    d = tmp_path / "no-ledger"
    d.mkdir(mode=0o700)
    return d / "ledger.jsonl"


def test_audit_reads_journal_exports(cluster, workdir, users, syslog, tmp_path):
    """The records may also come from `journalctl -o json` or `-o export`, entries of root's helper only."""
    tag = secrets.token_hex(3)
    user = users.make()
    cfg = workdir.write_config(RULE)
    syslog.clear()
    s = login(user, cfg, "192.0.2.9")
    call(users, user, f"j-{tag}")
    logout(user, cfg, s)
    entries = journal_entries(syslog.text())
    assert entries
    for text in (as_json(entries), as_export(entries)):
        (tmp_path / "journal").write_text(text)
        p = helper("audit", "--audit-log", cluster.audit_log, "--ledger", empty_ledger(tmp_path),
                   "--journal", tmp_path / "journal")
        assert p.returncode == 0, p.stderr
        groups = report_groups(p.stdout)
        mine = [g for g in groups if g[0] == frozenset([s])]
        assert mine and f"/api/v1/namespaces/bastion-users/configmaps/j-{tag}" in mine[0][2], p.stdout
        assert mine[0][1][0]["rhost"] == "192.0.2.9"
        (tmp_path / "no-ledger").rmdir()
    # The same entries from anyone but root, or from another program, are not records.
    for uid, exe in ((str(users.uid(user)), os.path.realpath(HELPER)), ("0", "/usr/bin/logger")):
        forged = [dict(e, _UID=uid, _EXE=exe) for e in entries]
        (tmp_path / "journal").write_text(as_export(forged))
        p = helper("audit", "--audit-log", cluster.audit_log, "--ledger", empty_ledger(tmp_path),
                   "--journal", tmp_path / "journal")
        assert p.returncode == 0, p.stderr
        assert f"j-{tag}" not in p.stdout and f"session={s}" not in p.stdout, p.stdout
        assert f"0 of {len(entries)}; {len(entries)} entries naming pam-kubeconfig were not written by it" in p.stderr
        (tmp_path / "no-ledger").rmdir()


@security("forged audit records change nothing in pam-kubeconfig audit: a `logger -t pam-kubeconfig` line naming "
          "another user's jti, and a journal entry with SYSLOG_IDENTIFIER=pam-kubeconfig written by an "
          "unprivileged user; syslog text is read only with --trust-syslog, where such a line is a conflict")
def test_forged_lines_change_nothing(cluster, workdir, users, syslog, private_ledger, tmp_path):
    ledger = private_ledger()
    tag = secrets.token_hex(3)
    victim, attacker = users.make(), users.make()
    cfg = workdir.write_config(RULE)
    syslog.clear()
    sv = login(victim, cfg, "198.51.100.7")
    sa = login(attacker, cfg, "203.0.113.9")
    call(users, victim, f"v-{tag}")
    call(users, attacker, f"a-{tag}")
    jti = next(r["jti"] for r in ledger.records() if r["event"] == "mint" and r["user"] == victim)
    # What the attacker can do: copy the victim's jti (from the API server's
    # audit log, say) into a line of their own, sent as the helper's tag.
    forged = (f"mint user={attacker} uid={users.uid(attacker)} cluster=test serviceaccount=bastion-users/u-{attacker} "
              f"jti={jti} expires=2099-01-01T00:00:00Z lifetime=15m reason=login sessions={sa} rhosts=203.0.113.9 "
              f"time=2000-01-01T00:00:00Z")
    run(["runuser", "-u", attacker, "--", "logger", "-t", "pam-kubeconfig", forged])
    logout(victim, cfg, sv)
    logout(attacker, cfg, sa)
    text = syslog.text()
    assert forged in text  # the line reached syslog as the attacker sent it

    baseline = helper("audit", "--audit-log", cluster.audit_log)
    assert baseline.returncode == 0, baseline.stderr
    groups = report_groups(baseline.stdout)
    owner = {u.rsplit("/", 1)[1]: {l["user"] for l in ls} for _, ls, uris in groups for u in uris if tag in u}
    assert owner == {f"v-{tag}": {victim}, f"a-{tag}": {attacker}}, owner

    # The journal, as journald would record it: the helper's lines (_UID=0, its
    # _EXE), the attacker's logger line (their _UID, logger's _EXE), and an
    # entry that claims to be the helper's in every field a client sets.
    entries = journal_entries(text, uid_of=users.uid(attacker))
    entries.append({"_UID": str(users.uid(attacker)), "_EXE": os.path.realpath(HELPER), "_HOSTNAME": os.uname().nodename,
                    "SYSLOG_IDENTIFIER": "pam-kubeconfig", "MESSAGE": forged})
    for fmt in (as_export, as_json):
        (tmp_path / "journal").write_text(fmt(entries))
        p = helper("audit", "--audit-log", cluster.audit_log, "--journal", tmp_path / "journal")
        assert p.returncode == 0, p.stderr
        assert p.stdout == baseline.stdout  # the forgeries change nothing
        assert "2 entries naming pam-kubeconfig were not written by it" in p.stderr, p.stderr

    # Syslog text only when told, and it says what it trusts: the forged line
    # then names the victim's jti for the attacker, which is an error naming both.
    (tmp_path / "syslog").write_text(text + "\n")
    p = helper("audit", "--audit-log", cluster.audit_log, "--trust-syslog", tmp_path / "syslog")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "any local user can write such lines with logger(1)" in p.stderr
    assert re.search(rf"error: jti {jti} is recorded for user={victim} .* and for user={attacker} ", p.stderr), p.stderr
    conflict = [b for b in p.stdout.split("\n\n") if b.startswith(f"conflict jti={jti}")]
    assert conflict and f"configmaps/v-{tag}" in conflict[0], p.stdout
    assert all(f"v-{tag}" not in u for _, ls, uris in report_groups(p.stdout) for u in uris
               if attacker in {l["user"] for l in ls})


@security("a jti the ledger records for two users is reported as an error naming both, its requests attributed to "
          "neither")
def test_a_duplicate_jti_in_the_ledger_is_an_error(cluster, workdir, users, private_ledger, tmp_path):
    ledger = private_ledger()
    tag = secrets.token_hex(3)
    a, b = users.make(), users.make()
    cfg = workdir.write_config(RULE)
    sa = login(a, cfg, "198.51.100.1")
    sb = login(b, cfg, "198.51.100.2")
    call(users, a, f"d-{tag}")
    logout(a, cfg, sa)
    logout(b, cfg, sb)
    records = ledger.records()
    mint = next(r for r in records if r["event"] == "mint" and r["user"] == a)
    copy = tmp_path / "dup"
    copy.mkdir(mode=0o700)
    dup = dict(mint, user=b, uid=users.uid(b), sessions=[{"id": sb, "rhost": "198.51.100.2"}])
    (copy / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + [dup]))
    os.chmod(copy / "ledger.jsonl", 0o600)
    p = helper("audit", "--audit-log", cluster.audit_log, "--ledger", copy / "ledger.jsonl", "--output", "json")
    assert p.returncode == 1, p.stderr
    assert re.search(rf"error: jti {mint['jti']} is recorded for user={a} .* and for user={b} ", p.stderr), p.stderr
    out = json.loads(p.stdout)
    [c] = out["conflicts"]
    assert c["jti"] == mint["jti"] and [r["user"] for r in c["records"]] == [a, b]
    assert [r["uri"] for r in c["requests"] if tag in r["uri"]] == [f"/api/v1/namespaces/bastion-users/configmaps/d-{tag}"]
    assert not any(tag in r["uri"] for g in out["groups"] for r in g["requests"])
    # The ledger as it was: one record, one owner.
    p = helper("audit", "--audit-log", cluster.audit_log, "--output", "json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["conflicts"] == []
    [g] = [g for g in out["groups"] if any(tag in r["uri"] for r in g["requests"])]
    assert g["user"] == a and [l["session"] for l in g["logins"]] == [sa]
