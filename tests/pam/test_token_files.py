"""Tokens as the kubelet gives them to pods: short-lived, in root-owned
directories under /run, rotated while a session is open, and never in the home."""
import base64
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import (RUN_DIR, Driver, assert_no_token_left, helper, kubeconfig_of, kubectl_as, run, security,
                      token_in, token_path, user_token)

PAM_SUCCESS = 0


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def home_holds(users, user, tokens):
    """Every file under the home, read as root: does any hold one of the tokens?"""
    found = []
    for root, _, files in os.walk(users.home(user)):
        for name in files:
            p = Path(root) / name
            try:
                data = p.read_bytes() if not p.is_symlink() else b""
            except OSError:
                continue
            found += [str(p) for t in tokens if t.encode() in data]
    return found


def token_requests(cluster, mark):
    return [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"
            and e["objectRef"].get("subresource") == "token"]


@security("the home never holds a token: at login, rotation, a second session and logout")
def test_the_home_never_holds_a_token(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = workdir.alice_config(user)
    svc = pam_service(f"config={cfg}")
    issued = []

    def step(what):
        if token_path(users, user).exists():
            t = user_token(users, user)
            if t not in issued:
                issued.append(t)
        assert home_holds(users, user, issued) == [], what

    first = Driver(svc, user)
    assert first.open_rc == PAM_SUCCESS, first.lines
    step("login")
    assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
    step("rotation")
    second = Driver(svc, user)
    assert second.open_rc == PAM_SUCCESS
    step("second session")
    # kubectl, run as the user, reads the token through tokenFile.
    who = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == "system:serviceaccount:team-a:alice", who.stderr
    step("kubectl")
    assert first.close() == ["close 0 Success"]
    step("first logout")
    assert second.close() == ["close 0 Success"]
    step("last logout")
    assert len(issued) == 2
    assert_no_token_left(users, user)
    for t in issued:
        cluster.wait_refused(t)


@security("token files: root-owned 0755/0711 directories, the user's own 0400 file; nobody else reads it, the "
          "user creates nothing there")
def test_token_file_permissions(cluster, workdir, users):
    user, other = users.make(), users.make()
    cfg = workdir.alice_config(user)
    holder = subprocess.Popen(["sleep", "600"])
    try:
        p = helper("open", "--user", user, "--session", "perm1", "--config", cfg, "--pid", str(holder.pid))
        assert p.returncode == 0, p.stderr
        tf = token_path(users, user)
        for path, owner, mode in ((RUN_DIR, 0, 0o755), (tf.parent, 0, 0o711), (tf, users.uid(user), 0o400)):
            st = os.lstat(path)
            assert (st.st_uid, st.st_mode & 0o7777) == (owner, mode), path
        assert run(["runuser", "-u", user, "--", "cat", tf], check=False).stdout.strip() == user_token(users, user)
        assert run(["runuser", "-u", other, "--", "cat", tf], check=False).returncode != 0
        for attempt in (["touch", tf.parent / "mine"], ["ls", tf.parent], ["ln", "-s", "/etc/shadow",
                                                                         tf.parent / "x.token"]):
            assert run(["runuser", "-u", user, "--", *attempt], check=False).returncode != 0, attempt
        # Beside the token only the user's status file (issue 26), written the same way.
        assert sorted(os.listdir(tf.parent)) == ["status.json", "test.token"]
        st = os.lstat(tf.parent / "status.json")
        assert (st.st_uid, st.st_mode & 0o7777) == (users.uid(user), 0o400)
        assert run(["runuser", "-u", other, "--", "cat", tf.parent / "status.json"], check=False).returncode != 0
    finally:
        holder.kill()
        holder.wait()
        helper("gc", "--config", cfg)


@security("links planted where the user can write never redirect root's writes of a token file")
def test_planted_links_never_redirect_root_writes(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user)
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "link1", "--config", cfg,
                      "--pid", str(holder.pid)).returncode == 0
        tf = token_path(users, user)
        home = users.home(user)
        old = user_token(users, user)
        # The user links their own token file into the home (allowed: they own it),
        # and plants symlinks to a root file under every name root writes.
        # (a hard link needs /run and the home on one filesystem; where they are not, only the symlink)
        hard = run(["runuser", "-u", user, "--", "ln", tf, home / "hard"], check=False).returncode == 0
        run(["runuser", "-u", user, "--", "ln", "-s", "/etc/shadow", home / "test.token"])
        shadow = Path("/etc/shadow").read_bytes()
        ino = os.stat(tf).st_ino
        assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
        assert os.stat(tf).st_ino != ino  # a new file renamed into place
        if hard:
            assert (home / "hard").read_text().strip() == old  # the link keeps what it had
        assert user_token(users, user) != old
        assert Path("/etc/shadow").read_bytes() == shadow
    finally:
        holder.kill()
        holder.wait()
        helper("gc", "--config", cfg)


@security("a lost host: with no cleanup at all, every token it issued dies within token.ttl")
def test_a_lost_host_issues_nothing_longer_than_ttl(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user, extra="token:\n  ttl: 10m\n")
    holder = subprocess.Popen(["sleep", "600"])
    tokens = []
    try:
        assert helper("open", "--user", user, "--session", "lost1", "--config", cfg,
                      "--pid", str(holder.pid)).returncode == 0
        tokens.append(user_token(users, user))
        assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
        tokens.append(user_token(users, user))
    finally:
        holder.send_signal(signal.SIGKILL)  # the host dies: no logout, no gc
        holder.wait()
    for t in tokens:
        c = claims(t)
        assert c["exp"] - c["iat"] <= 600, c
        assert c["kubernetes.io"]["secret"]["name"].startswith("pam-kubeconfig-")
    helper("gc", "--config", cfg)


def test_refresh_now_rotates_with_one_token_request_per_cluster(cluster, workdir, users):
    user = users.make()
    cfg = workdir.write_config(
        f"  - user: {user}\n    cluster: one\n    serviceaccount: team-a/alice\n"
        f"  - user: {user}\n    cluster: two\n    serviceaccount: team-a/alice\n",
        clusters=[workdir.cluster_entry("one"), workdir.cluster_entry("two")])
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "now1", "--config", cfg,
                      "--pid", str(holder.pid)).returncode == 0
        before = {c: user_token(users, user, c) for c in ("one", "two")}
        mark = cluster.audit_mark()
        assert helper("refresh", "--config", cfg).returncode == 0  # nothing due: nothing sent
        assert token_requests(cluster, mark) == []
        p = helper("refresh", "--config", cfg, "--now", user)
        assert p.returncode == 0, p.stderr
        assert len(token_requests(cluster, mark)) == 2
        after = {c: user_token(users, user, c) for c in ("one", "two")}
        assert all(before[c] != after[c] for c in before)
        for c in after:
            assert cluster.whoami(after[c]) == "system:serviceaccount:team-a:alice"
    finally:
        holder.kill()
        holder.wait()
        helper("gc", "--config", cfg)


def test_rotation_lines_name_every_session_the_token_serves(cluster, workdir, users, syslog):
    user = users.make()
    cfg = workdir.alice_config(user)
    holders = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
    try:
        for i, h in enumerate(holders):
            assert helper("open", "--user", user, "--session", f"rot{i}", "--config", cfg, "--pid", str(h.pid),
                          "--rhost", f"192.0.2.{i + 1}").returncode == 0
        syslog.clear()
        assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
        line = next(l for l in syslog.text().splitlines() if f"mint user={user} " in l)
        assert "reason=rotation" in line
        sessions = re.search(r"sessions=(\S+)", line).group(1).split(",")
        rhosts = re.search(r"rhosts=(\S+)", line).group(1).split(",")
        assert sorted(sessions) == ["rot0", "rot1"] and sorted(rhosts) == ["192.0.2.1", "192.0.2.2"]
    finally:
        for h in holders:
            h.kill()
            h.wait()
        helper("gc", "--config", cfg)


def test_inline_token_keeps_the_old_form_and_follows_rotation(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user, extra="kubeconfig:\n  inline_token: true\n")
    holder = subprocess.Popen(["sleep", "600"])
    try:
        assert helper("open", "--user", user, "--session", "inl1", "--config", cfg,
                      "--pid", str(holder.pid)).returncode == 0
        kc = kubeconfig_of(users, user)
        first = token_in(kc)
        assert first == user_token(users, user)
        assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
        assert token_in(kc) == user_token(users, user) != first
    finally:
        holder.kill()
        holder.wait()
        helper("gc", "--config", cfg)


def test_a_stale_refresh_timer_is_reported(cluster, workdir, users):
    user = users.make()
    cfg = workdir.alice_config(user)
    beat = [p for p in Path("/var/cache/pam_kubeconfig").glob("heartbeat-*") if not p.name.endswith(".lock")]
    for p in beat:
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    p = helper("check", "--config", cfg)
    assert "the refresh timer has never run" in p.stderr or "has not run for over 3 minutes" in p.stderr
    holder = subprocess.Popen(["sleep", "600"])
    try:
        p = helper("open", "--user", user, "--session", "hb1", "--config", cfg, "--pid", str(holder.pid))
        assert p.returncode == 0 and "enable pam-kubeconfig-refresh.timer" in p.stderr
        assert helper("refresh", "--config", cfg).returncode == 0
        p = helper("check", "--config", cfg)
        assert "refresh timer" not in p.stderr
    finally:
        holder.kill()
        holder.wait()
        helper("gc", "--config", cfg)
