"""`pam-kubeconfig status` (issue 26), run by the user in a real ssh session: what
it says agrees with the API server (`kubectl auth whoami`) and the token's own
claims; after the logout, and after an administrator's revocation while the
session is still open, it reports nothing valid and exits 1, trusting root's
status file over the token's future exp; another user cannot read it."""
import base64
import json
import secrets
import time
from pathlib import Path

import pytest

from conftest import RUN_DIR, Background, run, security
from test_ssh import Sshd, wait_closed

RULES = """  - user: "*"
    cluster: test
    serviceaccount: bastion-users/u-{user_safe}
    create: true
    clusterrole: view
"""


@pytest.fixture
def sshd(cluster, workdir, installed):
    cfg = workdir.write_config(RULES)
    s = Sshd(installed, cfg)
    yield s, cfg, installed / "pam-kubeconfig"
    s.stop()


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def parts(text):
    """The blocks a session's command printed between === lines."""
    return [p.strip() for p in text.split("===\n")]


@security("a user sees what they hold with pam-kubeconfig status (no root, no network): the ServiceAccount, "
          "expiry and rotation agree with the API server and the token; after logout it reports nothing valid "
          "and exits 1, and another user cannot read the status file")
def test_status_in_an_ssh_session(cluster, users, sshd):
    server, cfg, helper = sshd
    user, other = users.make(), users.make()
    server.allow(user)
    p = server.ssh(user, f"{helper} status --output json; echo rc=$?; echo ===; kubectl auth whoami -o json; echo ===; "
                         f"tf=$(sed -n 's/^ *tokenFile: //p' \"${{KUBECONFIG%%:*}}\" | head -1); cat \"$tf\"; "
                         f"echo; echo ===; {helper} status; echo rc=$?")
    assert p.returncode == 0, p.stderr
    status, whoami, token, text = parts(p.stdout)
    assert status.endswith("rc=0"), status
    st = json.loads(status.rsplit("\n", 1)[0])
    who = json.loads(whoami)["status"]["userInfo"]
    c = claims(token.strip())
    [ctx] = st["contexts"]
    assert st["valid"] is True and ctx["valid"] is True and ctx["state"] == "current"
    assert (ctx["context"], ctx["cluster"], ctx["in_kubeconfig"]) == ("test", "test", True)
    # As the API server sees it: who the token is, and when it ends.
    assert who["username"] == f"system:serviceaccount:{ctx['serviceaccount_namespace']}:{ctx['serviceaccount']}"
    assert ctx["token"]["subject"] == who["username"] == c["sub"]
    assert ctx["token"]["jti"] == ctx["jti"] == c["jti"]
    assert ctx["expires"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c["exp"]))
    # The next rotation at 80 % of the token's life (refresh_before 20 %), on
    # the helper's clock: within a second or two of the server's.
    rotation = time.mktime(time.strptime(ctx["next_rotation"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(rotation - (c["iat"] + 0.8 * (c["exp"] - c["iat"]))) <= 2, (ctx, c)
    assert ctx["namespace"] == "bastion-users"
    [session] = st["sessions"]
    assert session["rhost"] == "127.0.0.1" and st["user"] == user and st["uid"] == users.uid(user)
    assert "context test: valid" in text and f"serviceaccount   bastion-users/u-{user}" in text, text
    assert text.endswith("1 of 1 context valid\nrc=0"), text
    assert wait_closed(users, user)

    # After the logout: nothing valid, exit 1, though the token's exp lies ahead.
    assert c["exp"] > time.time() + 60
    after = run(["runuser", "-u", user, "--", helper, "status", "--output", "json"], check=False)
    assert after.returncode == 1, after.stdout + after.stderr
    out = json.loads(after.stdout)
    assert out["valid"] is False
    assert [(x["context"], x["state"], x["valid"]) for x in out["contexts"]] in ([("test", "revoked", False)], [])
    text = run(["runuser", "-u", user, "--", helper, "status"], check=False)
    assert text.returncode == 1 and "0 of" in text.stdout, text.stdout

    # Another user reads nothing of it.
    status_file = RUN_DIR / str(users.uid(user)) / "status.json"
    assert status_file.exists() and (status_file.stat().st_mode & 0o777) == 0o400
    assert status_file.stat().st_uid == users.uid(user)
    peek = run(["runuser", "-u", other, "--", "cat", status_file], check=False)
    assert peek.returncode != 0 and "Permission denied" in peek.stderr, peek.stdout
    theirs = run(["runuser", "-u", other, "--", helper, "status", "--output", "json"], check=False)
    assert theirs.returncode == 1 and user not in theirs.stdout, theirs.stdout


def revoke_as_admin(helper, cfg, workdir, user):
    """An administrator's revocation of the user's grants while their session
    is open: `pam-kubeconfig revoke USER` where this build has it (issue 25),
    else the way this build has: the user taken out of the mapping, and a
    refresh, which revokes what no longer maps (I3)."""
    usage = run([helper, "--help"], check=False).stdout
    if "revoke USER" in usage:
        return run([helper, "revoke", user, "--config", cfg], check=False)
    workdir.write_config(f'  - user: "nobody-{secrets.token_hex(3)}"\n    cluster: test\n'
                         "    serviceaccount: bastion-users/u-{user_safe}\n")
    return run([helper, "refresh", "--config", cfg], check=False)


@security("after an administrator revokes a user's grants during their session, pam-kubeconfig status in that "
          "session reports nothing valid and exits 1, though the token in the file still carries a future exp")
def test_status_after_an_administrators_revocation(cluster, users, sshd, workdir, tmp_path):
    server, cfg, helper = sshd
    user = users.make()
    server.allow(user)
    go = Path(f"/tmp/kc-status-go-{secrets.token_hex(4)}")
    session = Background(["ssh", "-i", str(server.dir / "client_key"), "-p", str(server.port), "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                          f"{user}@127.0.0.1",
                          f"{helper} status --output json; echo rc=$?; echo ===; "
                          f"while [ ! -e {go} ]; do sleep 0.1; done; "
                          f"tf=$(sed -n 's/^ *tokenFile: //p' \"${{KUBECONFIG%%:*}}\" | head -1); "
                          f"echo \"token=$(cat \"$tf\" 2>/dev/null)\"; echo ===; "
                          f"{helper} status --output json; echo rc=$?"])
    try:
        deadline = time.monotonic() + 60
        while "===" not in session.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = json.loads(session.text().split("===")[0].rsplit("rc=", 1)[0])
        assert first["valid"] is True, first
        token = (RUN_DIR / str(users.uid(user)) / "test.token").read_text().strip()
        c = claims(token)
        r = revoke_as_admin(helper, cfg, workdir, user)
        assert r.returncode == 0, r.stdout + r.stderr
        cluster.wait_refused(token)  # it is revoked where it counts
        go.touch()
        out = session.wait(60)
    finally:
        go.unlink(missing_ok=True)
        session.stop()
        if "revoke USER" in run([helper, "--help"], check=False).stdout:
            run([helper, "unlock", user, "--config", cfg], check=False)
    _, tok, status = parts(out)
    assert status.endswith("rc=1"), out
    st = json.loads(status.rsplit("\n", 1)[0])
    assert st["valid"] is False, st
    assert all(not x["valid"] and x["state"] in ("revoked", "revoking", "locked") for x in st["contexts"]), st
    assert c["exp"] > time.time() + 60  # the token's own claims would have said valid
    assert wait_closed(users, user)
