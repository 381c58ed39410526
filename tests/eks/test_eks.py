"""EKS-native logins against a real kube-apiserver whose tokens are checked by
aws-iam-authenticator's own verifier (a webhook, partition aws-cn, region
cn-north-1), STS answered by a stand-in that checks every signature with the
AWS SDK for Go: a full PAM login with auth: eks in cn-north-1, each credential
source the login helper takes from its config, DescribeCluster discovery and
its cache, a real kubectl with v1 and v1beta1 exec entries, the deadline, the
instance metadata service's faults and the metadata firewall check."""
import base64
import json
import os
import re
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (HELPER, REPO, Cluster, Driver, helper, kubeconfig_of, kubectl_as, run, security,
                      user_token)
from fixtures import sts, tls  # noqa: F401
from standins import (KEYS, ROLE_CREDS, WEB_IDENTITY_TOKEN, AwsStandin, Container, Imds, RecordingProxy,
                      Webhook, creds_env)

CLUSTER = "test-eks"
REGION = "cn-north-1"
STS_HOST = "sts.cn-north-1.amazonaws.com.cn"
MINTER_ROLE = "arn:aws-cn:iam::111122223333:role/bastion-minter"


@pytest.fixture(scope="module")
def eks_cluster(tls, sts):
    """A second real test cluster whose API server authenticates k8s-aws-v1
    tokens through aws-iam-authenticator's verifier, as EKS in cn-north-1 does."""
    d, ca = tls
    hook = Webhook(d, ca, sts, CLUSTER, "aws-cn", REGION)
    state = Path(tempfile.mkdtemp(prefix="kc-eks-cluster."))
    env = dict(os.environ, KUBE_TEST_DIR=str(state),
               KUBE_TEST_APISERVER_ARGS=f"--authentication-token-webhook-config-file={hook.kubeconfig} "
                                        "--authentication-token-webhook-cache-ttl=1s")
    try:
        run([REPO / "tests/cluster/up"], env=env, timeout=900)
        values = dict(l.split("=", 1) for l in (state / "env").read_text().splitlines() if "=" in l)
        cluster = Cluster(values)
        cluster.ensure_sa("team-a", "alice", clusterrole="view")
        yield cluster, hook
    finally:
        run([REPO / "tests/cluster/down"], env=env, check=False)
        hook.close()


def root_file(workdir, name, text):
    p = workdir.path / name
    p.write_text(text)
    os.chmod(p, 0o600)
    return p


def eks_config(workdir, cluster, user, auth, cluster_block=None, extra=""):
    cluster_block = cluster_block or (f"    server: {cluster.server}\n"
                                      f"    certificate_authority: {cluster.ca_file}\n")
    workdir.config.write_text(f"""{extra}clusters:
  - name: {CLUSTER}
{cluster_block}    auth:
      eks:
        cluster_name: {CLUSTER}
        region: {REGION}
{auth}mappings:
  - user: {user}
    cluster: {CLUSTER}
    serviceaccount: team-a/alice
""")
    os.chmod(workdir.config, 0o644)
    return workdir.config


def stand_in_sts(sts, tls):
    return f"        sts_endpoint: {sts.url}\n        endpoint_ca: {tls[1]}\n"


def whoami(user, kc):
    return kubectl_as(user, kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout


@security("a full login with auth: eks in cn-north-1: no token on disk, no AWS secret in any output, the token "
          "refused after logout")
def test_full_login_in_cn_north_1_through_the_real_verifier(eks_cluster, workdir, users, sts, tls, pam_service):
    """sshd's path: libpam loads the module, the module runs the helper, which
    gets credentials by web identity from STS (the stand-in, for the real
    sts.cn-north-1.amazonaws.com.cn) and presents the token to the API server,
    which asks aws-iam-authenticator's verifier."""
    cluster, hook = eks_cluster
    user = users.make()
    token_file = root_file(workdir, "web-identity-token", WEB_IDENTITY_TOKEN)
    cfg = eks_config(workdir, cluster, user,
                     f"        web_identity_token_file: {token_file}\n        role_arn: {MINTER_ROLE}\n"
                     + stand_in_sts(sts, tls))
    assert not re.search(r"^\s*token_file:", cfg.read_text(), re.M)  # no bearer token on disk
    svc = pam_service(f"config={cfg}")
    before_sts, before_hook = len(sts.events()), len(hook.events())
    d = Driver(svc, user)
    try:
        assert d.open_rc == 0, d.lines
        kc = Path(d.env["KUBECONFIG"].split(":")[0])
        assert whoami(user, kc) == "system:serviceaccount:team-a:alice"
        # STS was asked for the cn-north-1 host, with the web identity token
        webid = [e for e in sts.events()[before_sts:] if e.get("action") == "AssumeRoleWithWebIdentity"]
        assert webid and webid[0]["ok"] and webid[0]["host"] == STS_HOST and webid[0]["role_arn"] == MINTER_ROLE
        # the verifier accepted the helper's token, signed for that host
        verdicts = hook.events()[before_hook:]
        assert any(v["ok"] and v["access_key_id"] == ROLE_CREDS["bastion-minter"][0] and v["sts_endpoint"] == STS_HOST
                   for v in verdicts), verdicts
        # a second login on this host: the config and the credentials from the caches
        second = Driver(svc, user)
        assert second.open_rc == 0, second.lines
        assert len([e for e in sts.events()[before_sts:] if e.get("action") == "AssumeRoleWithWebIdentity"]) == 1
        second.close()
        token = user_token(users, user, CLUSTER)
    finally:
        closed = d.close()
    assert closed and closed[0].startswith("close 0"), d.lines
    cluster.wait_refused(token)
    text = "\n".join(d.lines)
    for secret in (WEB_IDENTITY_TOKEN, ROLE_CREDS["bastion-minter"][1], ROLE_CREDS["bastion-minter"][2]):
        assert secret not in text


def open_once(user, cfg, session):
    holder = subprocess.Popen(["sleep", "300"])
    p = helper("open", "--user", user, "--session", session, "--config", cfg, "--pid", str(holder.pid))
    return p, holder


def close_once(user, cfg, session, holder):
    helper("close", "--user", user, "--session", session, "--config", cfg, "--pid", str(holder.pid))
    holder.kill()
    holder.wait()


def credentials_file_source(workdir, sts, tls):
    f = root_file(workdir, "aws-credentials", f"[other]\naws_access_key_id = AKIDSOURCE\n"
                                              f"aws_secret_access_key = {KEYS['AKIDSOURCE'][0]}\n"
                                              f"[bastion]\naws_access_key_id = AKIDFILE\n"
                                              f"aws_secret_access_key = {KEYS['AKIDFILE'][0]}\n")
    return f"        credentials_file: {f}\n        profile: bastion\n", "AKIDFILE", None


def process_source(workdir, sts, tls):
    secret, token, _ = KEYS["ASIAPROCESS"]
    doc = {"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": secret, "SessionToken": token,
           "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))}
    script = workdir.path / "credential-process"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --role ] && [ \"$2\" = 'bastion minter' ] || exit 7\n"
                      f"cat <<'EOF'\n{json.dumps(doc)}\nEOF\n")
    os.chmod(script, 0o700)
    return f"        credential_process: {script} --role 'bastion minter'\n", "ASIAPROCESS", None


def container_source(workdir, sts, tls):
    auth = "eyJ0eXAiOiJKV1QifQ.pod-identity-" + secrets.token_hex(4)
    token = root_file(workdir, "pod-identity-token", auth + "\n")
    c = Container(auth)
    return (f"        container_credentials_uri: {c.url}\n        container_authorization_token_file: {token}\n",
            "ASIACONTAINER", c)


def imds_then_role_source(workdir, sts, tls):
    imds = Imds()
    return (f"        imds_endpoint: {imds.url}\n        role_arn: {MINTER_ROLE}\n" + stand_in_sts(sts, tls),
            ROLE_CREDS["bastion-minter"][0], imds)


@pytest.mark.parametrize("source", [credentials_file_source, process_source, container_source,
                                    imds_then_role_source], ids=lambda f: f.__name__.removesuffix("_source"))
def test_each_credential_source_of_the_helper(eks_cluster, workdir, users, sts, tls, source):
    cluster, hook = eks_cluster
    auth, akid, standin = source(workdir, sts, tls)
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user, auth)
        before = len(hook.events())
        p, holder = open_once(user, cfg, "s1")
        assert p.returncode == 0, p.stderr
        verdicts = hook.events()[before:]
        assert any(v["ok"] and v["access_key_id"] == akid and v["sts_endpoint"] == STS_HOST for v in verdicts), \
            verdicts
        assert whoami(user, kubeconfig_of(users, user)) == "system:serviceaccount:team-a:alice"
        for _, (secret, token, _) in KEYS.items():
            assert secret not in p.stderr and (not token or token not in p.stderr)
        close_once(user, cfg, "s1", holder)
        if akid == ROLE_CREDS["bastion-minter"][0]:
            assume = [e for e in sts.calls("AssumeRole") if e.get("akid") == "AKIDINSTANCEROLE"]
            assert assume and assume[-1]["ok"] and assume[-1]["host"] == STS_HOST
            assert assume[-1]["session_name"].startswith("pam-kubeconfig-")
    finally:
        if standin:
            standin.close()


def test_kubectl_with_v1_and_v1beta1_exec_entries(eks_cluster, tmp_path):
    """kubectl runs eks-token as its exec plugin (KUBERNETES_EXEC_INFO set by
    client-go); the API server's verifier takes the token."""
    cluster, hook = eks_cluster
    for version in ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"):
        kc = tmp_path / "kubeconfig"
        interactive = "      interactiveMode: Never\n" if version.endswith("/v1") else ""
        kc.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: eks
  cluster:
    server: {cluster.server}
    certificate-authority: {cluster.ca_file}
users:
- name: eks
  user:
    exec:
      apiVersion: {version}
      command: {HELPER}
      args: [eks-token, --cluster-name, {CLUSTER}, --region, {REGION}, --output, json]
{interactive}contexts:
- name: eks
  context: {{cluster: eks, user: eks}}
current-context: eks
""")
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **creds_env("ASIAEXAMPLE2")}
        p = run(["kubectl", "--kubeconfig", kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
                env=env, check=False)
        assert p.returncode == 0 and p.stdout == "pam-kubeconfig", (version, p.stderr)
        assert "ASIAEXAMPLE2" in hook.accepted()


def test_discovery_names_the_context_after_the_arn_and_is_cached(eks_cluster, workdir, users, tls):
    cluster, hook = eks_cluster
    name = f"disc{os.getpid()}{time.monotonic_ns() % 100000}"
    arn = f"arn:aws-cn:eks:{REGION}:111122223333:cluster/{name}"
    ca = base64.b64encode(Path(cluster.ca_file).read_bytes()).decode()
    eks = AwsStandin(tls[0], clusters={name: {"endpoint": cluster.server, "ca": ca, "arn": arn}})
    imds = Imds()
    try:
        user = users.make()
        block = (f"    eks:\n      cluster_name: {name}\n      region: {REGION}\n"
                 f"      endpoint: {eks.url}\n      endpoint_ca: {tls[1]}\n")
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n", cluster_block=block)
        for session in ("d1", "d2"):
            p = helper("open", "--user", user, "--session", session, "--config", cfg)
            assert p.returncode == 0, p.stderr
        kc = kubeconfig_of(users, user)
        assert run(["kubectl", "config", "current-context", "--kubeconfig", kc]).stdout.strip() == arn
        described = eks.calls("DescribeCluster")
        assert len(described) == 1 and described[0]["ok"]  # the second login used the cache
        assert described[0]["host"] == "eks.cn-north-1.amazonaws.com.cn"  # signed for the real host
        assert whoami(user, kc) == "system:serviceaccount:team-a:alice"
    finally:
        imds.close()
        eks.close()


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for c in self.held:
            c.close()
        self.sock.close()


def test_a_silent_sts_costs_the_deadline_not_more(cluster, workdir, users, tls):
    silent, imds = Silent(), Imds()
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user,
                         f"        imds_endpoint: {imds.url}\n        role_arn: {MINTER_ROLE}\n"
                         f"        sts_endpoint: https://127.0.0.1:{silent.port}\n        endpoint_ca: {tls[1]}\n",
                         extra="network:\n  connect_timeout: 1s\n  request_timeout: 2s\n")
        start = time.monotonic()
        p = run([HELPER, "open", "--user", user, "--session", "t1", "--config", cfg], check=False)
        took = time.monotonic() - start
        assert p.returncode == 1
        assert "sts AssumeRole" in p.stderr and ("within" in p.stderr or "out of time" in p.stderr), p.stderr
        assert took < 4, took
    finally:
        silent.close()
        imds.close()


@security("instance metadata faults give a clear error within the budget, never through a proxy from the "
          "environment")
@pytest.mark.parametrize("mode,message", [
    ("v1only", "refused the IMDSv2 session token"),
    ("unauthorized", "refused the session token (401)"),
    ("norole", "lists no IAM role"),
    ("missing", "miss AccessKeyId, SecretAccessKey, Token or Expiration"),
    ("expired", "have expired"),
    ("slow", "within"),
])
def test_imds_faults_give_a_clear_error_in_budget(cluster, workdir, users, mode, message):
    imds, proxy = Imds(mode), RecordingProxy()
    # credentials an earlier stand-in on the same port gave must not hide the fault
    for entry in Path("/var/cache/pam_kubeconfig").glob("aws-credentials-*"):
        entry.unlink(missing_ok=True)
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n")
        env = {**os.environ, "HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url, "http_proxy": proxy.url,
               "https_proxy": proxy.url, "ALL_PROXY": proxy.url, "NO_PROXY": ""}
        start = time.monotonic()
        p = run([HELPER, "open", "--user", user, "--session", "f1", "--config", cfg], check=False, env=env)
        took = time.monotonic() - start
        assert p.returncode == 1
        assert message in p.stderr, p.stderr
        assert f"cluster {CLUSTER}: AWS credentials: instance metadata" in p.stderr
        assert took < 3.5, took  # the connect_timeout (2s) bounds all three IMDS calls
        assert proxy.connections == 0
        assert not kubeconfig_of(users, user).exists()
    finally:
        imds.close()
        proxy.close()


def _nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True)


def _drop_probe():
    for p in Path("/var/cache/pam_kubeconfig").glob("imds-probe-*"):
        p.unlink(missing_ok=True)


def test_check_online_fails_while_imds_is_open_to_users(cluster, workdir, users):
    imds = Imds()
    table = f"kc_test_{os.getpid()}"
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n")
        p = helper("check", "--online", "--config", cfg)
        assert p.returncode == 1
        assert "an unprivileged user (nobody) can fetch the instance role's credentials" in p.stderr
        # the finding is kept in the cache store, root's alone
        probe = list(Path("/var/cache/pam_kubeconfig").glob("imds-probe-*"))
        assert len(probe) == 1 and probe[0].read_text() == "reachable\n"
        assert probe[0].stat().st_uid == 0 and probe[0].stat().st_mode & 0o077 == 0
        # open now warns, while the probe's finding stands
        o = helper("open", "--user", user, "--session", "w1", "--config", cfg)
        assert "reachable by an unprivileged user" in o.stderr

        # The shipped rule, aimed at the stand-in's loopback port instead of 169.254.169.254.
        shipped = (REPO / "config/firewall/imds.nft").read_text()
        assert "ip daddr 169.254.169.254 meta skuid != 0 reject" in shipped
        rule = (f"table inet {table} {{\n chain output {{\n type filter hook output priority filter; policy accept;\n"
                f" ip daddr 127.0.0.1 tcp dport {imds.server.port} meta skuid != 0 reject\n }}\n}}\n")
        applied = subprocess.run(["nft", "-f", "-"], input=rule, text=True, capture_output=True)
        if applied.returncode != 0:
            pytest.fail(f"this machine does not let the test set firewall rules: {applied.stderr.strip()}")
        p = helper("check", "--online", "--config", cfg)
        assert "closed to unprivileged users" in p.stdout, p.stdout + p.stderr
        assert "can fetch the instance role's credentials" not in p.stderr
        assert probe[0].read_text() == "blocked\n"
    finally:
        _nft("delete", "table", "inet", table)
        imds.close()
        _drop_probe()


def test_a_discovered_cluster_that_failed_is_skipped_too(cluster, workdir, users, tls):
    """The after_failure mark is keyed by what the config names (EKS cluster and
    region), not by the endpoint discovery fills in, so it holds for discovery."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    name = f"down{os.getpid()}{time.monotonic_ns() % 100000}"
    ca = base64.b64encode(Path(cluster.ca_file).read_bytes()).decode()
    eks = AwsStandin(tls[0], clusters={name: {"endpoint": f"https://127.0.0.1:{dead}", "ca": ca,
                                             "arn": f"arn:aws-cn:eks:{REGION}:111122223333:cluster/{name}"}})
    imds = Imds()
    try:
        user = users.make()
        block = (f"    eks:\n      cluster_name: {name}\n      region: {REGION}\n"
                 f"      endpoint: {eks.url}\n      endpoint_ca: {tls[1]}\n")
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n", cluster_block=block)
        first = helper("open", "--user", user, "--session", "s1", "--config", cfg)
        assert first.returncode == 1 and "cannot reach" in first.stderr, first.stderr
        second = helper("open", "--user", user, "--session", "s2", "--config", cfg)
        assert second.returncode == 1
        assert "skipped: it failed less than 30s ago (network.after_failure)" in second.stderr, second.stderr
    finally:
        imds.close()
        eks.close()
