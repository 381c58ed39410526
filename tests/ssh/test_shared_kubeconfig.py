"""Issue 14 end to end: a real ssh session in which the user's own tools share
~/.kube/config-eks with us. The real kubectl and awscli run as the user inside
the session (`aws eks update-kubeconfig` against a DescribeCluster stand-in);
their changes survive the next login and a rotation, the user's own
~/.kube/config stays in reach and a clash of names is told at login, and the
logout writes nothing: the user's and the tools' entries remain, our token is
refused, no token is left in the home."""
import re
import subprocess
import time

import pytest

from conftest import REPO, STATE_DIR, helper, kubeconfig_of, run, token_path, user_token
from kubeconfig_checks import (CLASH_NOTE, USER_CONFIG, WHO, assert_ours, entry, home_holds, other_cluster,
                               kubectl_reads, load, write_as, write_aws_config)
from standins import AwsStandin, make_tls
from test_ssh import Sshd, wait_closed

ARN = "arn:aws:eks:us-west-2:111122223333:cluster/other"
NS = "team-a-tools"  # where the user points our context; alice may read it


@pytest.fixture(scope="module")
def aws():
    """An awscli every test user can run (the machine's may sit in root's home)."""
    return run([REPO / "tests" / "ssh" / "build-awscli"], timeout=600).stdout.strip()


@pytest.fixture
def session_user(cluster, workdir, installed, users, aws):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    cluster.ensure_namespace(NS)
    cluster.kubectl("-n", NS, "create", "rolebinding", "alice-view", "--clusterrole=view",
                    "--serviceaccount=team-a:alice", check=False)
    cluster.kubectl("-n", NS, "create", "configmap", "kc-shared-marker", check=False)
    user = users.make()
    cfg = workdir.alice_config(user)
    home = users.home(user)
    # DescribeCluster for "other" (the real test cluster again), over HTTPS.
    tls = workdir.path / "eks-tls"
    ca = make_tls(tls)
    tls.chmod(0o755)
    eks = AwsStandin(tls, clusters=other_cluster(cluster))
    write_as(users, user, home / ".kube" / "config", USER_CONFIG)
    write_aws_config(users, user, ca)
    sshd = Sshd(installed, cfg)
    sshd.allow(user)
    yield sshd, user, cfg, eks
    sshd.stop()
    eks.close()


CONTEXT_NOTE = "kubectl: context test as team-a/alice (its token renews itself while you are logged in)"


def marked(text):
    """The `@@KEY=value` lines a session printed (the tty echoes the typed
    commands, where the marker is split by quotes)."""
    return dict(re.findall(r"^@@(\w+)=(.*?)\r?$", text, re.M))


def mark(key, command):
    return f'echo "@@""{key}=$({command} 2>&1 | tr "\\n" " " | sed "s/ *$//")"'


def login_messages(p):
    """The lines a login printed. The tty may echo the commands fed on stdin
    before sshd has written the login messages, on the same line: a line that
    ends with a message counts as that message."""
    out = []
    for l in p.stdout.replace("\r", "").splitlines():
        out.append(l.strip())
        for msg in (CONTEXT_NOTE, CLASH_NOTE):
            if l.strip() != msg and l.strip().endswith(msg):
                out.append(msg)
    return out


def test_users_tools_share_the_kubeconfig_across_logins_rotation_and_logout(cluster, users, session_user, aws):
    sshd, user, cfg, eks = session_user
    kc = kubeconfig_of(users, user)
    home = users.home(user)
    timings = {}

    def ssh(what, **kw):
        start = time.monotonic()
        p = sshd.ssh(user, **kw)
        timings.setdefault(what, []).append(time.monotonic() - start)
        assert p.returncode == 0, p.stdout + p.stderr
        return p

    # The first login: the message names our context and the clash with ~/.kube/config.
    p = ssh("login", tty=True, stdin=mark("CONTEXTS", "kubectl config get-contexts -o name | sort") + "\nexit\n")
    lines = login_messages(p)
    assert CONTEXT_NOTE in lines, lines
    assert CLASH_NOTE in lines, lines
    assert marked(p.stdout)["CONTEXTS"] == "home test"  # both files' contexts

    # A session held open across what follows (a rotation needs a live one).
    holder = subprocess.Popen(sshd_command(sshd, user, "cat >/dev/null"), stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_sessions(users, user, 1)
        # The user's tools, in a session: awscli adds a cluster into the first file
        # of KUBECONFIG, kubectl switches context and sets a namespace.
        p = ssh("login", command="; ".join([
            "set -e",
            f"{aws} eks update-kubeconfig --name other --endpoint-url {eks.url}",
            mark("AFTER_AWS", "kubectl config current-context"),
            "kubectl config use-context test",
            f"kubectl config set-context --current --namespace={NS}",
            mark("CONFIGMAPS", "kubectl get configmaps -o name"),
            mark("WHO", "kubectl auth whoami -o jsonpath={.status.userInfo.username}"),
            f"kubectl config use-context {ARN}",
            mark("CONTEXTS", "kubectl config get-contexts -o name | sort")]))
        out = marked(p.stdout)
        assert f"Added new context {ARN} to {kc}" in p.stdout, p.stdout
        assert out["AFTER_AWS"] == ARN
        assert out["CONFIGMAPS"] == "configmap/kc-shared-marker" and out["WHO"] == WHO, out
        assert out["CONTEXTS"] == f"{ARN} home test"
        assert eks.calls("DescribeCluster"), "awscli did not ask the DescribeCluster stand-in"
        theirs = load(kc)
        assert_ours(theirs, token_file=token_path(users, user))
        assert theirs["current-context"] == ARN
        assert entry(theirs, "contexts", "test")["context"]["namespace"] == NS
        assert all(entry(theirs, kind, ARN) for kind in ("clusters", "contexts", "users"))
        after_tools = kc.read_bytes()

        # The next login keeps all of it and says only what it said before.
        p = ssh("login", tty=True, stdin="\n".join([
            mark("CC", "kubectl config current-context"),
            mark("CONFIGMAPS", "kubectl --context test get configmaps -o name"),
            "exit", ""]))
        lines = login_messages(p)
        assert CLASH_NOTE in lines, lines
        assert not [l for l in lines if l.startswith('current-context "') or "was left as it was" in l], lines
        assert marked(p.stdout) == {"CC": ARN, "CONFIGMAPS": "configmap/kc-shared-marker"}, p.stdout
        assert kc.read_bytes() == after_tools

        # A rotation: a new token, the file as the user left it, the session follows.
        tokens = [user_token(users, user)]
        start = time.monotonic()
        assert helper("refresh", "--config", cfg, "--now", user).returncode == 0
        timings["rotation"] = [time.monotonic() - start]
        tokens.append(user_token(users, user))
        assert tokens[1] != tokens[0]
        assert kc.read_bytes() == after_tools
        p = ssh("login", command="; ".join([
            "set -e",
            mark("WHO", "kubectl --context test auth whoami -o jsonpath={.status.userInfo.username}"),
            mark("CC", "kubectl config current-context"),
            mark("NS", "kubectl config view --minify --context test -o jsonpath={..namespace}")]))
        assert marked(p.stdout) == {"WHO": WHO, "CC": ARN, "NS": NS}, p.stdout
        assert cluster.whoami(tokens[1]) == WHO
        assert kc.read_bytes() == after_tools
    finally:
        holder.stdin.close()  # EOF: the session's command ends, and with it the session
        holder.wait(timeout=30)

    # Logout: as if nothing had been written.
    start = time.monotonic()
    assert wait_closed(users, user)
    timings["logout"] = [time.monotonic() - start]
    assert kc.read_bytes() == after_tools
    assert (home / ".kube" / "config").read_text() == USER_CONFIG
    view = kubectl_reads(user, kc)
    assert {c["name"] for c in view["contexts"]} == {"test", ARN} and view["current-context"] == ARN
    assert not token_path(users, user).exists()
    for t in tokens:
        cluster.wait_refused(t)
    assert home_holds(home, tokens) == []
    print("\n" + ", ".join(f"{k}: {max(v):.2f}s max of {len(v)}" for k, v in timings.items()))


def sshd_command(sshd, user, command):
    return ["ssh", "-i", str(sshd.dir / "client_key"), "-p", str(sshd.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            f"{user}@127.0.0.1", command]


def wait_for_sessions(users, user, n, limit=30):
    deadline = time.monotonic() + limit
    d = STATE_DIR / str(users.uid(user))
    while time.monotonic() < deadline:
        if len(list(d.glob("session-*.json"))) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{n} session(s) of {user} not open after {limit}s")
