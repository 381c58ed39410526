"""Issue 13 over a real sshd: a `nohup kubectl get -w &` left running by an ssh
login is cut when that login ends, and does not come back."""
import datetime
import re
import secrets
import time

import pytest

from conftest import run
from test_ssh import Sshd, wait_closed

NS = "team-a"
CUT_LIMIT = 12
SECOND_CUT = 11


@pytest.fixture
def sshd(cluster, workdir, installed):
    cluster.ensure_sa(NS, "alice", clusterrole="view")
    cluster.kubectl("-n", NS, "create", "serviceaccount", "default", check=False)
    s = Sshd(installed, workdir.write_config(
        "  - group: kc-ssh-alice\n    cluster: test\n    serviceaccount: team-a/alice\n"))
    run(["groupadd", "-f", "kc-ssh-alice"])
    yield s
    s.stop()


# In the login: the watch, left behind with nohup and no fd of the session's;
# then, once it shows the pod, the jti of the session's token (not the token).
LEAVE_A_WATCH = """
nohup sh -c 'kubectl get pods -n {ns} -w; echo "kubectl exit=$?"' > ~/watch.out 2>&1 < /dev/null &
for i in $(seq 100); do grep -q {pod} ~/watch.out && break; sleep 0.1; done
f="${{KUBECONFIG%%:*}}"; tf=$(sed -n "s/^ *tokenFile: //p" "$f" | head -1)
python3 -c 'import base64, json, sys; p = sys.stdin.read().split(".")[1]; \
print("JTI=" + json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["jti"])' < "$tf"
cat ~/watch.out
"""


def test_nohup_kubectl_watch_left_by_an_ssh_login_is_cut_at_its_logout(cluster, users, sshd):
    user = users.make(groups=["kc-ssh-alice"])
    sshd.allow(user)
    pod = f"p{secrets.token_hex(3)}"
    cluster.kubectl("-n", NS, "run", pod, "--image=busybox", "--restart=Never",
                    "--overrides", '{"spec":{"automountServiceAccountToken":false}}')
    p = sshd.ssh(user, LEAVE_A_WATCH.format(ns=NS, pod=pod))
    logout = time.monotonic()
    wall = datetime.datetime.now(datetime.timezone.utc)
    assert p.returncode == 0 and pod in p.stdout, p.stdout + p.stderr
    jti = re.search(r"^JTI=(\S+)$", p.stdout, re.M).group(1)
    out = users.home(user) / "watch.out"
    while "kubectl exit=" not in out.read_text() and time.monotonic() - logout < CUT_LIMIT + 5:
        time.sleep(0.1)
    took = time.monotonic() - logout
    text = out.read_text()
    print(f"\nnohup kubectl get -w ended {took:.1f}s after the ssh client returned: {text.splitlines()[-2:]}")
    assert "kubectl exit=" in text and took <= CUT_LIMIT, text
    assert "connection abort" in text or "connection reset" in text, text
    assert wait_closed(users, user)
    # Past the helper's second cut: nothing of the token succeeded after the logout,
    # and nothing of the user's is connected to the API server.
    time.sleep(max(0.0, logout + SECOND_CUT + 2 - time.monotonic()))
    ok = [e for e in cluster.audit_events()
          if (e.get("user", {}).get("extra", {}) or {}).get("authentication.kubernetes.io/credential-id") == [f"JTI={jti}"]
          and datetime.datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00")) > wall
          and e.get("responseStatus", {}).get("code", 500) < 400]
    assert ok == [], ok
    port = cluster.server.rsplit(":", 1)[1]
    ss = run(["ss", "-tnHe", "state", "established", "dport", "=", f":{port}"]).stdout
    assert not re.search(rf"\buid:{users.uid(user)}\b", ss), ss
    assert run(["pgrep", "-u", user], check=False).stdout.strip() == ""
