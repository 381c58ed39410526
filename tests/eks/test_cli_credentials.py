"""eks-token's credentials, source by source in botocore's order, each against a
stand-in for its endpoint (STS, the container endpoint, IMDS) or a file, and
each compared with what `aws eks get-token` makes of the same environment: the
same token byte for byte, or both refusing."""
import json
import os
import shutil
import time

import pytest

from fixtures import awscli_batch, frozen_now, ours, sts, tls, token_of  # noqa: F401
from standins import KEYS, ROLE_CREDS, WEB_IDENTITY_TOKEN, Container, Imds, creds_env

ARGS = ["--cluster-name", "prod", "--region", "us-west-2"]


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".aws").mkdir()
    return tmp_path


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def both(env, home, args=ARGS):
    """(awscli's result, ours) for one environment, under one frozen clock."""
    when = frozen_now()
    theirs = awscli_batch([{"args": ["eks", "get-token", *args], "env": env}], when, home=str(home))[0]
    return theirs, ours(args, env, when, home=str(home))


def same_token(env, home, args=ARGS):
    theirs, mine = both(env, home, args)
    assert theirs["rc"] == 0, theirs["stderr"]
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs["stdout"]
    return mine


def sts_env(sts, tls):
    return {"AWS_ENDPOINT_URL_STS": sts.url, "AWS_CA_BUNDLE": str(tls[1])}


def test_environment_wins_unless_a_profile_is_named(home):
    write(home / ".aws/credentials", f"[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = "
                                     f"{KEYS['AKIDFILE'][0]}\n[ops]\naws_access_key_id = AKIDSOURCE\n"
                                     f"aws_secret_access_key = {KEYS['AKIDSOURCE'][0]}\n")
    mine = same_token(creds_env("ASIAEXAMPLE2"), home)
    assert "ASIAEXAMPLE2" in token_url(mine)
    mine = same_token(creds_env("ASIAEXAMPLE2"), home, ARGS + ["--profile", "ops"])
    assert "AKIDSOURCE" in token_url(mine)
    mine = same_token({"AWS_PROFILE": "ops"}, home)
    assert "AKIDSOURCE" in token_url(mine)
    # half a key pair in the environment: refused by both
    theirs, mine = both({"AWS_ACCESS_KEY_ID": "AKIDFILE"}, home)
    assert theirs["rc"] != 0 and mine.returncode != 0
    assert "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in mine.stderr


def token_url(result):
    import base64
    raw = token_of(result.stdout)[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


def test_source_profile_chain_assumes_each_role_in_turn(home, sts, tls):
    write(home / ".aws/config", "[profile admin]\nrole_arn = arn:aws:iam::111122223333:role/eks-admin\n"
                                "source_profile = minter\n[profile minter]\n"
                                "role_arn = arn:aws:iam::111122223333:role/bastion-minter\nsource_profile = base\n"
                                "role_session_name = bastion\n")
    write(home / ".aws/credentials", f"[base]\naws_access_key_id = AKIDSOURCE\n"
                                     f"aws_secret_access_key = {KEYS['AKIDSOURCE'][0]}\n")
    before = len(sts.calls("AssumeRole"))
    mine = same_token({"AWS_PROFILE": "admin", **sts_env(sts, tls)}, home)
    calls = sts.calls("AssumeRole")[before:]
    # awscli, then ours: base -> bastion-minter -> eks-admin, each signature checked
    assert [(c["akid"], c["role_arn"].rsplit("/", 1)[1], c["ok"]) for c in calls] == [
        ("AKIDSOURCE", "bastion-minter", True), ("ASIAASSUMEDROLE1", "eks-admin", True)] * 2
    assert calls[0]["session_name"] == "bastion" and calls[1]["session_name"].startswith("botocore-session-")
    assert calls[1]["session_name"] == calls[3]["session_name"]  # the same default name as awscli
    assert ROLE_CREDS["eks-admin"][0] in token_url(mine)


def test_source_profile_loop_is_refused_not_a_hang(home, sts, tls):
    write(home / ".aws/config", "[profile a]\nrole_arn = arn:aws:iam::111122223333:role/eks-admin\n"
                                "source_profile = b\n[profile b]\n"
                                "role_arn = arn:aws:iam::111122223333:role/bastion-minter\nsource_profile = a\n")
    before = len(sts.events())
    start = time.monotonic()
    theirs, mine = both({"AWS_PROFILE": "a", **sts_env(sts, tls)}, home)
    assert theirs["rc"] != 0 and "Infinite loop" in theirs["stderr"]
    assert mine.returncode == 1
    assert "profile [b]: source_profile [a] makes a loop; refused" in mine.stderr
    assert time.monotonic() - start < 30
    assert len(sts.events()) == before  # refused before any call


def test_credential_source_environment(home, sts, tls):
    write(home / ".aws/config", "[profile env]\nrole_arn = arn:aws:iam::111122223333:role/bastion-minter\n"
                                "credential_source = Environment\n")
    env = {**creds_env("AKIDSOURCE"), **sts_env(sts, tls)}
    # AWS_PROFILE leaves the environment's keys first in the chain: they sign
    mine = same_token({"AWS_PROFILE": "env", **env}, home)
    assert "AKIDSOURCE" in token_url(mine)
    # --profile takes them out of the chain; the role is assumed with them
    mine = same_token(env, home, ARGS + ["--profile", "env"])
    assert ROLE_CREDS["bastion-minter"][0] in token_url(mine)


def test_web_identity_from_the_environment_and_from_a_profile(home, sts, tls):
    token = write(home / "web-identity-token", WEB_IDENTITY_TOKEN)
    role = "arn:aws:iam::111122223333:role/irsa"
    before = len(sts.calls("AssumeRoleWithWebIdentity"))
    mine = same_token({"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": role,
                       "AWS_ROLE_SESSION_NAME": "pod-1", **sts_env(sts, tls)}, home)
    assert ROLE_CREDS["irsa"][0] in token_url(mine)
    write(home / ".aws/config", f"[default]\nweb_identity_token_file = {token}\nrole_arn = {role}\n")
    same_token(sts_env(sts, tls), home)
    calls = sts.calls("AssumeRoleWithWebIdentity")[before:]
    assert len(calls) == 4 and all(c["ok"] and c["role_arn"] == role for c in calls)
    assert calls[0]["session_name"] == calls[1]["session_name"] == "pod-1"
    # a token STS does not accept: both fail with its answer (awscli's cache of
    # the last answer goes first)
    write(token, "not-the-token")
    shutil.rmtree(home / ".aws/cli", ignore_errors=True)
    theirs, mine = both(sts_env(sts, tls), home)
    assert theirs["rc"] != 0 and mine.returncode == 1 and "InvalidIdentityToken" in mine.stderr


def process_script(home, body):
    return write(home / "creds.sh", "#!/bin/sh\n" + body, 0o700)


def test_credential_process(home):
    secret, token, _ = KEYS["ASIAPROCESS"]
    good = {"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": secret, "SessionToken": token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))}
    script = process_script(home, f"cat <<'EOF'\n{json.dumps(good)}\nEOF\n")
    write(home / ".aws/config", f"[default]\ncredential_process = {script} --some 'quoted arg'\n")
    mine = same_token({}, home)
    assert "ASIAPROCESS" in token_url(mine)

    expired = {**good, "Expiration": "2020-01-01T00:00:00Z"}
    process_script(home, f"cat <<'EOF'\n{json.dumps(expired)}\nEOF\n")
    theirs, mine = both({}, home)
    assert theirs["rc"] != 0 and mine.returncode == 1
    assert "credential_process: the credentials expired at 2020-01-01T00:00:00Z" in mine.stderr

    process_script(home, "echo '{\"Version\": 1, \"AccessKeyId\": \"A\"'\n")
    theirs, mine = both({}, home)
    assert theirs["rc"] != 0 and mine.returncode == 1
    assert "credential_process: its output is not a JSON object" in mine.stderr
    assert secret not in mine.stderr

    process_script(home, "echo '{\"Version\": 2}'\n")
    theirs, mine = both({}, home)
    assert theirs["rc"] != 0 and "Unsupported version" in theirs["stderr"]
    assert mine.returncode == 1 and "unsupported Version" in mine.stderr


def test_static_keys_in_the_config_file(home):
    write(home / ".aws/config", f"[profile cfg]\naws_access_key_id = AKIDFILE\n"
                                f"aws_secret_access_key = {KEYS['AKIDFILE'][0]}\n")
    mine = same_token({"AWS_PROFILE": "cfg"}, home)
    assert "AKIDFILE" in token_url(mine)


def test_container_credentials_with_an_authorization_token_file(home):
    auth = "eyJ0eXAiOiJKV1QifQ.pod-identity.sig"
    token_file = write(home / "eks-pod-identity-token", auth)
    c = Container(auth)
    try:
        mine = same_token({"AWS_CONTAINER_CREDENTIALS_FULL_URI": c.url,
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file)}, home)
        assert "ASIACONTAINER" in token_url(mine)
        assert [r[2].get("Authorization") for r in c.server.requests] == [auth, auth]
        # a plain http endpoint off loopback is refused, as botocore refuses it
        theirs, mine = both({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.1/creds"}, home)
        assert theirs["rc"] != 0 and mine.returncode == 1 and "plain http only to a loopback" in mine.stderr
        # a wrong token: the endpoint's 401, in both
        write(token_file, "wrong")
        theirs, mine = both({"AWS_CONTAINER_CREDENTIALS_FULL_URI": c.url,
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file)}, home)
        assert theirs["rc"] != 0 and mine.returncode == 1 and "answered HTTP 401" in mine.stderr
    finally:
        c.close()


def test_instance_role_through_imdsv2(home):
    imds = Imds(akid="AKIDINSTANCEROLE")
    try:
        mine = same_token({"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}, home)
        assert "AKIDINSTANCEROLE" in token_url(mine)
        assert ("PUT", "/latest/api/token") in [(r[0], r[1]) for r in imds.server.requests]
    finally:
        imds.close()


def test_sso_is_out_of_scope_and_says_so(home):
    write(home / ".aws/config", "[profile corp]\nsso_session = corp\nsso_account_id = 111122223333\n"
                                "sso_role_name = Admin\n[sso-session corp]\nsso_start_url = https://x.awsapps.com/start"
                                "\nsso_region = us-east-1\n")
    mine = ours(ARGS + ["--profile", "corp"], {}, frozen_now(), home=str(home))
    assert mine.returncode == 1
    assert "uses AWS IAM Identity Center (SSO), which pam-kubeconfig eks-token does not support" in mine.stderr
