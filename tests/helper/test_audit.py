"""The audit trail: every mint line names the logins its token serves (refreshes
included), and `pam-kubeconfig audit` joins the API server's audit log with the
helper's syslog lines so each API request is traced to its Unix logins."""
import json
import os
import re
import secrets
import time

from conftest import helper, kubeconfig_of, kubectl_as, security

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
          "(user, rhost, session, start, end) by pam-kubeconfig audit")
def test_audit_traces_requests_to_logins(cluster, workdir, users, syslog, tmp_path):
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

    mint_log = tmp_path / "mint.log"
    mint_log.write_text(log + "\n")
    p = helper("audit", "--audit-log", cluster.audit_log, "--mint-log", mint_log)
    assert p.returncode == 0, p.stderr
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


def test_audit_reads_journal_exports(cluster, workdir, users, syslog, tmp_path):
    """The mint log may also be `journalctl -o json` or `-o export` output."""
    tag = secrets.token_hex(3)
    user = users.make()
    cfg = workdir.write_config(RULE)
    syslog.clear()
    s = login(user, cfg, "192.0.2.9")
    call(users, user, f"j-{tag}")
    logout(user, cfg, s)
    messages = [l.split(": ", 1)[1] for l in syslog.text().splitlines() if "pam-kubeconfig[" in l]
    as_json = "\n".join(json.dumps({"MESSAGE": m, "SYSLOG_IDENTIFIER": "pam-kubeconfig", "PRIORITY": "6"})
                        for m in messages)
    as_export = "\n\n".join(f"__CURSOR=s=x;i={i}\nSYSLOG_IDENTIFIER=pam-kubeconfig\nMESSAGE={m}"
                            for i, m in enumerate(messages))
    for text in (as_json, as_export):
        (tmp_path / "mint").write_text(text + "\n")
        p = helper("audit", "--audit-log", cluster.audit_log, "--mint-log", tmp_path / "mint")
        assert p.returncode == 0, p.stderr
        groups = report_groups(p.stdout)
        mine = [g for g in groups if g[0] == frozenset([s])]
        assert mine and f"/api/v1/namespaces/bastion-users/configmaps/j-{tag}" in mine[0][2], p.stdout
        assert mine[0][1][0]["rhost"] == "192.0.2.9"
