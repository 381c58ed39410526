"""`make soak`, not `make test`: slow tests against the real test cluster.

A lost host (issue 13): a bastion that dies with a session open (SIGKILL of the
session's process, then nothing: no logout, no `gc`, no `refresh`) leaves a
token behind, in /run and unrevoked. With `token.ttl: 10m` the API server
refuses it once it has expired, through the very file a client of the user's
reads; nothing else ended it (its Secret is still there)."""
import base64
import datetime
import json
import signal
import time

from conftest import Driver, helper, kubectl_as, kubeconfig_of, token_path, user_token

PAM_SUCCESS = 0
WHO = "system:serviceaccount:team-a:alice"
TTL = 600
# kube-apiserver validates a ServiceAccount token's exp with go-jose's default
# leeway (1 min) and caches a successful authentication for 10 s.
LEEWAY = 60
CACHE = 10


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def user_whoami(users, user):
    """kubectl as the user, through the kubeconfig and token file the session left."""
    p = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o",
                   "jsonpath={.status.userInfo.username}")
    return p.stdout.strip() if p.returncode == 0 else p.stderr.strip()


def sleep_until(wall):
    time.sleep(max(0.0, wall - time.time()))


def test_a_dead_hosts_token_is_refused_once_expired(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = workdir.alice_config(user, extra="token:\n  ttl: 10m\n")
    session = Driver(pam_service(f"config={cfg}"), user)
    try:
        assert session.open_rc == PAM_SUCCESS, session.lines
        token = user_token(users, user)
        assert user_whoami(users, user) == WHO
    finally:
        # The host dies: the session's process is killed, no close runs, and no
        # gc or refresh ever comes.
        session.p.send_signal(signal.SIGKILL)
        session.p.wait()
    try:
        c = claims(token)
        assert c["exp"] - c["iat"] <= TTL, c
        secret = c["kubernetes.io"]["secret"]["name"]
        assert token_path(users, user).exists()

        # Until it expires nothing refuses it: no revocation happened.
        sleep_until(c["exp"] - 2 * CACHE)
        assert cluster.whoami(token) == WHO
        assert user_whoami(users, user) == WHO

        sleep_until(c["exp"])
        while True:
            now = time.time()
            if cluster.whoami(token) == 401:
                break
            assert now < c["exp"] + LEEWAY + CACHE + 15, "the expired token is still accepted"
            time.sleep(2)
        after = now - c["exp"]
        print(f"\na lost host's token (ttl {TTL}s, exp at "
              f"{datetime.datetime.fromtimestamp(c['exp'], datetime.timezone.utc):%H:%M:%S}Z) was refused "
              f"{after:.0f}s after its exp")
        # The user's own kubectl, reading the file that is still there, is refused too.
        assert token_path(users, user).exists()
        out = user_whoami(users, user)
        assert "Unauthorized" in out or "must be logged in" in out, out
        # Nothing cleaned up: the Secret the token is bound to is still there.
        got = cluster.kubectl("-n", "team-a", "get", "secret", secret, "-o", "name", check=False)
        assert got.stdout.strip() == f"secret/{secret}", got.stderr
    finally:
        # The host is back: gc finds the dead session and revokes what it left.
        helper("gc", "--config", cfg)
