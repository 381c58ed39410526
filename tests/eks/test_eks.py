"""EKS-native: tokens byte-identical to awscli's, the instance role through
IMDSv2 (and its faults), DescribeCluster discovery with its cache, AssumeRole,
the metadata firewall check, and a full login with auth: eks and no token file
proven against the real kube-apiserver (with a webhook token authenticator)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import HELPER, REPO, Cluster, helper, kubeconfig_of, kubectl_as, run, user_token  # noqa: E402
from standins import CREDS, Eks, Imds, RecordingProxy, Sts, Webhook, make_ca, verify_eks_token  # noqa: E402

FROZEN = "2026-11-29 01:00:00"
CREDENTIAL_SETS = [
    {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
    {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE2", "AWS_SECRET_ACCESS_KEY": "abc/def+ghi=",
     "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE//tok+en=="},
    {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE3", "AWS_SECRET_ACCESS_KEY": "x" * 40,
     "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjE" + "A" * 300 + "/=+"},
]


def frozen(cmd, env):
    base = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "LANG": "C"}
    return subprocess.run(["faketime", "-f", FROZEN, *cmd], env={**base, **env}, capture_output=True, timeout=120)


@pytest.mark.parametrize("creds", range(len(CREDENTIAL_SETS)))
@pytest.mark.parametrize("region,cluster_name", [("us-west-2", "prod"), ("eu-central-1", "my-cluster_1"),
                                                 ("ap-southeast-2", "a")])
def test_eks_token_is_byte_identical_to_awscli(creds, region, cluster_name):
    env = CREDENTIAL_SETS[creds]
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]
    theirs = frozen(["aws", *args], env)
    ours = frozen([str(HELPER), "eks-token", "--cluster-name", cluster_name, "--region", region], env)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


def test_eks_token_from_a_shared_credentials_file_and_profile(tmp_path):
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default/secret\n\n"
        "[ops]\naws_access_key_id=ASIAOPS\naws_secret_access_key=ops+secret\naws_session_token = ops/token==\n")
    for env, extra in (({}, []), ({"AWS_PROFILE": "ops"}, []), ({}, ["--profile", "ops"])):
        env = {**env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
        args = ["--cluster-name", "prod", "--region", "us-east-1", *extra]
        theirs = frozen(["aws", "eks", "get-token", *args], env)
        ours = frozen([str(HELPER), "eks-token", *args], env)
        assert theirs.returncode == 0 and ours.returncode == 0, theirs.stderr + ours.stderr
        assert ours.stdout == theirs.stdout


def test_eks_token_verifies_and_names_the_cluster():
    env = {"AWS_ACCESS_KEY_ID": "AKIDINSTANCEROLE", "AWS_SECRET_ACCESS_KEY": CREDS["AKIDINSTANCEROLE"][0],
           "AWS_SESSION_TOKEN": CREDS["AKIDINSTANCEROLE"][1]}
    out = run([HELPER, "eks-token", "--cluster-name", "prod", "--region", "us-west-2"], env={**os.environ, **env})
    token = __import__("json").loads(out.stdout)["status"]["token"]
    assert verify_eks_token(token, "prod") == "AKIDINSTANCEROLE"
    with pytest.raises(ValueError):
        verify_eks_token(token, "another-cluster")  # x-k8s-aws-id is signed


@pytest.fixture(scope="module")
def tls():
    d = Path(tempfile.mkdtemp(prefix="kc-eks-tls."))
    os.chmod(d, 0o755)
    ca = make_ca(d)
    yield d, ca
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def eks_cluster(tls):
    """A second real test cluster whose API server authenticates k8s-aws-v1
    tokens through a webhook (as EKS does with aws-iam-authenticator)."""
    d, ca = tls
    hook = Webhook(d, ca, "test-eks")
    state = Path(tempfile.mkdtemp(prefix="kc-eks-cluster."))
    env = dict(os.environ, KUBE_TEST_DIR=str(state),
               KUBE_TEST_APISERVER_ARGS=f"--authentication-token-webhook-config-file={hook.kubeconfig} "
                                        "--authentication-token-webhook-cache-ttl=1s")
    run([REPO / "tests/cluster/up"], env=env, timeout=900)
    values = dict(l.split("=", 1) for l in (state / "env").read_text().splitlines() if "=" in l)
    cluster = Cluster(values)
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    yield cluster, hook
    run([REPO / "tests/cluster/down"], env=env)
    hook.close()


def eks_config(workdir, cluster, user, auth, cluster_block=None):
    cluster_block = cluster_block or (f"    server: {cluster.server}\n"
                                      f"    certificate_authority: {cluster.ca_file}\n")
    workdir.config.write_text(f"""clusters:
  - name: test-eks
{cluster_block}    auth:
      eks:
        cluster_name: test-eks
        region: us-west-2
{auth}mappings:
  - user: {user}
    cluster: test-eks
    serviceaccount: team-a/alice
""")
    os.chmod(workdir.config, 0o644)
    return workdir.config


def open_close(user, cfg):
    holder = subprocess.Popen(["sleep", "300"])
    p = helper("open", "--user", user, "--session", "eks1", "--config", cfg, "--pid", str(holder.pid))
    return p, holder


def test_full_login_with_the_instance_role_and_no_token_file(eks_cluster, workdir, users):
    cluster, hook = eks_cluster
    imds = Imds()
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n")
        assert "token_file" not in cfg.read_text()
        p, holder = open_close(user, cfg)
        assert p.returncode == 0, p.stderr
        assert "AKIDINSTANCEROLE" in hook.accepted  # the API server took the helper's EKS token
        kc = kubeconfig_of(users, user)
        who = kubectl_as(user, kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert who.stdout == "system:serviceaccount:team-a:alice", who.stderr
        token = user_token(users, user, "test-eks")
        close = helper("close", "--user", user, "--session", "eks1", "--config", cfg, "--pid", str(holder.pid))
        assert close.returncode == 0, close.stderr
        cluster.wait_refused(token)
        holder.kill()
    finally:
        imds.close()


def test_assume_role_then_login(eks_cluster, workdir, users, tls):
    cluster, hook = eks_cluster
    d, ca = tls
    imds, sts = Imds(), Sts(d)
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user,
                         f"        imds_endpoint: {imds.url}\n"
                         f"        role_arn: arn:aws:iam::111122223333:role/bastion-minter\n"
                         f"        sts_endpoint: {sts.url}\n        endpoint_ca: {ca}\n")
        p, holder = open_close(user, cfg)
        assert p.returncode == 0, p.stderr
        assert sts.calls and sts.calls[0]["RoleArn"] == "arn:aws:iam::111122223333:role/bastion-minter"
        assert hook.accepted[-1] == "ASIAASSUMEDROLE1"
        helper("close", "--user", user, "--session", "eks1", "--config", cfg, "--pid", str(holder.pid))
        holder.kill()
    finally:
        imds.close()
        sts.close()


def test_discovery_names_the_context_after_the_arn_and_is_cached(eks_cluster, workdir, users, tls):
    cluster, hook = eks_cluster
    d, ca = tls
    imds = Imds()
    eks = Eks(d, f"disc{os.getpid()}{time.monotonic_ns() % 100000}", cluster.server, cluster.ca_file)
    hook.cluster_name_backup = hook.cluster_name
    try:
        user = users.make()
        block = (f"    eks:\n      cluster_name: {eks.name}\n      region: us-west-2\n"
                 f"      endpoint: {eks.url}\n      endpoint_ca: {ca}\n")
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n", cluster_block=block)
        for session in ("d1", "d2"):
            p = helper("open", "--user", user, "--session", session, "--config", cfg)
            assert p.returncode == 0, p.stderr
        kc = kubeconfig_of(users, user)
        ctx = run(["kubectl", "config", "current-context", "--kubeconfig", kc]).stdout.strip()
        assert ctx == eks.arn
        assert len(eks.server.requests) == 1  # the second login used the cache
        who = kubectl_as(user, kc, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert who.stdout == "system:serviceaccount:team-a:alice"
    finally:
        imds.close()
        eks.close()


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
        assert "cluster test-eks: AWS credentials: instance metadata" in p.stderr
        assert took < 3.5, took  # the connect_timeout (2s) bounds all three IMDS calls
        assert proxy.connections == 0
        assert not kubeconfig_of(users, user).exists()
    finally:
        imds.close()
        proxy.close()


def _nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True)


def test_check_online_fails_while_imds_is_open_to_users(cluster, workdir, users):
    imds = Imds()
    table = f"kc_test_{os.getpid()}"
    try:
        user = users.make()
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n")
        p = helper("check", "--online", "--config", cfg)
        assert p.returncode == 1
        assert "an unprivileged user (nobody) can fetch the instance role's credentials" in p.stderr
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
    finally:
        _nft("delete", "table", "inet", table)
        imds.close()
        cache = Path("/var/cache/pam_kubeconfig/imds-probe")
        cache.unlink(missing_ok=True)


def test_a_discovered_cluster_that_failed_is_skipped_too(cluster, workdir, users, tls):
    """The after_failure mark is keyed by what the config names (EKS cluster and
    region), not by the endpoint discovery fills in, so it holds for discovery."""
    d, ca = tls
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    imds = Imds()
    eks = Eks(d, f"down{os.getpid()}{time.monotonic_ns() % 100000}", f"https://127.0.0.1:{dead}", cluster.ca_file)
    try:
        user = users.make()
        block = (f"    eks:\n      cluster_name: {eks.name}\n      region: us-west-2\n"
                 f"      endpoint: {eks.url}\n      endpoint_ca: {ca}\n")
        cfg = eks_config(workdir, cluster, user, f"        imds_endpoint: {imds.url}\n", cluster_block=block)
        first = helper("open", "--user", user, "--session", "s1", "--config", cfg)
        assert first.returncode == 1 and "cannot reach" in first.stderr, first.stderr
        second = helper("open", "--user", user, "--session", "s2", "--config", cfg)
        assert second.returncode == 1
        assert "skipped: it failed less than 30s ago (network.after_failure)" in second.stderr, second.stderr
    finally:
        imds.close()
        eks.close()
