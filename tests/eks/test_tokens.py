"""eks-token against `aws eks get-token` and aws-iam-authenticator's verifier:
for every partition (a region each, with the FIPS, dual-stack and legacy-global
variants), with and without a session token, short and 100-character cluster
names, our output is byte for byte awscli's under a frozen clock, and the
verifier (its own list of hosts, STS answered by a stand-in that recomputes the
signature with the AWS SDK for Go) accepts our token exactly when it accepts
awscli's. Also KUBERNETES_EXEC_INFO, regions from the environment and the
profile, --cluster-id, --output and --role-arn."""
import json
from collections import defaultdict

import pytest

from conftest import security
from fixtures import awscli_batch, frozen_now, ours, sts, tls, token_of  # noqa: F401
from standins import KEYS, creds_env, verify

REGIONS = {"aws": "us-west-2", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1", "aws-iso": "us-iso-east-1",
           "aws-iso-b": "us-isob-east-1", "aws-iso-e": "eu-isoe-west-1", "aws-iso-f": "us-isof-south-1",
           "aws-eusc": "eusc-de-east-1"}
VARIANTS = {
    "regional": {},
    "fips": {"AWS_USE_FIPS_ENDPOINT": "true"},
    "dualstack": {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    "fips+dualstack": {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
    "legacy-global": {"AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
}
CREDS = ["AKIDEXAMPLE", "ASIAEXAMPLE2"]  # without and with a session token
LONG_NAME = ("long-cluster-name_" * 6)[:99] + "z"
NAMES = ["prod", LONG_NAME]


def matrix_cases():
    for partition, region in REGIONS.items():
        for variant, venv in VARIANTS.items():
            if variant == "legacy-global" and partition != "aws":
                continue  # the legacy global endpoint exists in aws alone
            for akid in CREDS:
                for name in NAMES:
                    yield {"partition": partition, "region": region, "variant": variant, "akid": akid,
                           "name": name, "env": {**creds_env(akid), **venv},
                           "args": ["--cluster-name", name, "--region", region]}


@pytest.fixture(scope="module")
def matrix():
    when = frozen_now()
    cases = list(matrix_cases())
    theirs = awscli_batch([{"args": ["eks", "get-token", *c["args"]], "env": c["env"]} for c in cases], when)
    for c, t in zip(cases, theirs):
        c["theirs"] = t
        c["ours"] = ours(c["args"], c["env"], when)
    return cases


def test_matrix_is_byte_identical_to_awscli(matrix):
    compared = 0
    for c in matrix:
        label = f"{c['partition']} {c['region']} {c['variant']} {c['akid']} name={len(c['name'])}"
        if c["theirs"]["rc"] != 0:
            # awscli builds no dual-stack endpoint where botocore's endpoints.json
            # models none (aws-iso-e, aws-iso-f); it is then not a case.
            assert "Unable to construct a modeled endpoint" in c["theirs"]["stderr"], label
            assert "dualstack" in c["variant"] and c["partition"] in ("aws-iso-e", "aws-iso-f"), label
            continue
        assert c["ours"].returncode == 0, f"{label}: {c['ours'].stderr}"
        assert c["ours"].stdout == c["theirs"]["stdout"], label
        assert c["ours"].stderr == c["theirs"]["stderr"] == "", label
        compared += 1
    assert compared == len(matrix) - 16  # all but iso-e and iso-f x 2 dual-stack variants x 2 creds x 2 names


def test_the_verifier_accepts_ours_exactly_when_it_accepts_awscli(matrix, sts, tls):
    groups = defaultdict(list)
    for c in matrix:
        if c["theirs"]["rc"] == 0:
            groups[(c["partition"], c["region"], c["name"])].append(c)
    accepted = refused = 0
    for (partition, region, name), cases in groups.items():
        tokens = [token_of(c["ours"].stdout) for c in cases] + [token_of(c["theirs"]["stdout"]) for c in cases]
        verdicts = verify(tokens, name, partition, region, sts, tls[1])
        mine, awscli = verdicts[:len(cases)], verdicts[len(cases):]
        for c, v_ours, v_theirs in zip(cases, mine, awscli):
            label = f"{partition} {c['variant']} {c['akid']}"
            assert v_ours["ok"] == v_theirs["ok"], f"{label}: ours {v_ours} awscli {v_theirs}"
            if c["variant"] == "regional":
                assert v_ours["ok"], f"{label}: {v_ours}"  # a regional token is good in every partition
            if v_ours["ok"]:
                assert v_ours["access_key_id"] == c["akid"]
                assert v_ours["arn"].startswith(f"arn:{partition}:")
                accepted += 1
            else:
                refused += 1
    # what the verifier's list of hosts decided, for the record
    print(f"verifier: {accepted} accepted, {refused} refused")
    assert accepted >= 8 * 2 * 2 * 2  # at least regional and FIPS in every partition


@security("an EKS token signed with a wrong secret, or for another cluster or partition, is refused by "
          "aws-iam-authenticator's verifier")
def test_a_wrong_secret_or_another_cluster_is_refused(sts, tls):
    when = frozen_now()
    good = ours(["--cluster-name", "prod", "--region", "cn-north-1"], creds_env("ASIAEXAMPLE2"), when)
    bad_env = {**creds_env("ASIAEXAMPLE2"), "AWS_SECRET_ACCESS_KEY": "not/the+secret"}
    bad = ours(["--cluster-name", "prod", "--region", "cn-north-1"], bad_env, when)
    v = verify([token_of(good.stdout), token_of(bad.stdout)], "prod", "aws-cn", "cn-north-1", sts, tls[1])
    assert v[0]["ok"], v[0]
    assert not v[1]["ok"] and "SignatureDoesNotMatch" in v[1]["error"]
    other = verify([token_of(good.stdout)], "staging", "aws-cn", "cn-north-1", sts, tls[1])[0]
    assert not other["ok"] and "SignatureDoesNotMatch" in other["error"]  # x-k8s-aws-id is signed
    # and a token for another partition's host is not this partition's
    gov = ours(["--cluster-name", "prod", "--region", "us-gov-west-1"], creds_env("AKIDEXAMPLE"), when)
    v = verify([token_of(gov.stdout)], "prod", "aws-cn", "cn-north-1", sts, tls[1])[0]
    assert not v["ok"] and ("unexpected hostname" in v["error"] or "does not support hostname" in v["error"])


EXEC_INFOS = {
    "v1": '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}',
    "v1beta1": '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}',
    "v1alpha1": '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}',
    "unknown": '{"apiVersion":"client.authentication.k8s.io/v2"}',
    "garbage": "{not json",
    "absent": None,
}


def test_exec_info_picks_the_version_as_awscli_does():
    when = frozen_now()
    cases = []
    for name, info in EXEC_INFOS.items():
        env = creds_env("AKIDEXAMPLE")
        if info is not None:
            env["KUBERNETES_EXEC_INFO"] = info
        cases.append((name, env))
    theirs = awscli_batch([{"args": ["eks", "get-token", "--cluster-name", "prod", "--region", "eu-west-1"],
                            "env": env} for _, env in cases], when)
    for (name, env), t in zip(cases, theirs):
        o = ours(["--cluster-name", "prod", "--region", "eu-west-1"], env, when)
        assert t["rc"] == 0 and o.returncode == 0, name
        assert o.stdout == t["stdout"], name
        assert o.stderr == t["stderr"], name
    v1 = json.loads(ours(["--cluster-name", "x", "--region", "eu-west-1"],
                         {**creds_env("AKIDEXAMPLE"), "KUBERNETES_EXEC_INFO": EXEC_INFOS["v1"]}, when).stdout)
    assert v1["apiVersion"] == "client.authentication.k8s.io/v1"


def test_region_from_the_environment_or_the_profile(tmp_path):
    when = frozen_now()
    (tmp_path / "config").write_text("[default]\nregion = cn-northwest-1\n[profile gov]\nregion = us-gov-east-1\n"
                                     "use_fips_endpoint = true\n")
    (tmp_path / "credentials").write_text("[gov]\naws_access_key_id = AKIDEXAMPLE\n"
                                          f"aws_secret_access_key = {KEYS['AKIDEXAMPLE'][0]}\n")
    files = {"AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    cases = [
        ([], {**creds_env("AKIDEXAMPLE"), "AWS_DEFAULT_REGION": "ap-southeast-7"}),
        ([], {**creds_env("AKIDEXAMPLE"), **files}),  # the default profile's region
        ([], {**files, "AWS_PROFILE": "gov"}),  # the profile's region, FIPS choice and keys
        (["--profile", "gov"], files),
        (["--cluster-id", "8f2a6a0c-1b2c-4d5e-9f00-0123456789ab"], {**creds_env("AKIDEXAMPLE"), **files}),
        (["--output", "json"], {**creds_env("AKIDEXAMPLE"), **files}),
    ]
    theirs = awscli_batch([{"args": ["eks", "get-token", *(a if "--cluster-id" in a else ["--cluster-name", "c", *a])],
                            "env": e} for a, e in cases], when)
    for (args, env), t in zip(cases, theirs):
        full = args if "--cluster-id" in args else ["--cluster-name", "c", *args]
        o = ours(full, env, when)
        assert t["rc"] == 0, t["stderr"]
        assert o.returncode == 0, o.stderr
        assert o.stdout == t["stdout"], (args, env)
    # AWS_REGION (awscli v2 reads it; this awscli v1 does not): as --region
    o = ours(["--cluster-name", "c"], {**creds_env("AKIDEXAMPLE"), "AWS_REGION": "eusc-de-east-1",
                                        "AWS_DEFAULT_REGION": "us-east-1"}, when)
    t = ours(["--cluster-name", "c", "--region", "eusc-de-east-1"], creds_env("AKIDEXAMPLE"), when)
    assert o.returncode == 0 and o.stdout == t.stdout


def test_usage_errors_are_clear():
    when = frozen_now()
    env = creds_env("AKIDEXAMPLE")
    o = ours(["--cluster-name", "c", "--region", "us-east-1", "--output", "text"], env, when)
    assert o.returncode == 2 and "--output text: only json is printed" in o.stderr and o.stdout == ""
    o = ours(["--cluster-name", "c", "--cluster-id", "x", "--region", "us-east-1"], env, when)
    assert o.returncode == 2 and "one of --cluster-name and --cluster-id" in o.stderr
    o = ours(["--cluster-name", "c"], env, when)
    assert o.returncode == 1 and "no region: give --region, set AWS_REGION or AWS_DEFAULT_REGION" in o.stderr
    o = ours(["--cluster-name", "c", "--region", "us east"], env, when)
    assert o.returncode == 1 and "'us east' is not a valid AWS region name" in o.stderr
    o = ours(["--cluster-name", "c", "--region", "eu-isoe-west-1"], {**env, "AWS_USE_FIPS_ENDPOINT": "true",
                                                                    "AWS_ENDPOINT_URL_STS": "https://127.0.0.1:1"},
             when)
    assert o.returncode == 1 and "do not go together" in o.stderr
    assert KEYS["AKIDEXAMPLE"][0] not in o.stderr


def test_role_arn_assumes_with_awscli_session_name(sts, tls, tmp_path):
    """--role-arn: AssumeRole (header-signed, checked by the SDK's signer) with
    awscli's session name, on the endpoint AWS_ENDPOINT_URL_STS names; the
    token is byte for byte awscli's."""
    when = frozen_now()
    env = {**creds_env("AKIDEXAMPLE"), "AWS_ENDPOINT_URL_STS": sts.url, "AWS_CA_BUNDLE": str(tls[1])}
    args = ["--cluster-name", "prod", "--region", "us-west-2", "--role-arn",
            "arn:aws:iam::111122223333:role/eks-admin"]
    before = len(sts.calls("AssumeRole"))
    theirs = awscli_batch([{"args": ["eks", "get-token", *args], "env": env}], when, home=str(tmp_path))[0]
    mine = ours(args, env, when, home=str(tmp_path))
    assert theirs["rc"] == 0, theirs["stderr"]
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs["stdout"]
    calls = sts.calls("AssumeRole")[before:]
    assert [c["ok"] for c in calls] == [True, True], calls
    assert {c["session_name"] for c in calls} == {"EKSGetTokenAuth"}
    assert {c["akid"] for c in calls} == {"AKIDEXAMPLE"}
    v = verify([token_of(mine.stdout)], "prod", "aws", "us-west-2", sts, tls[1])[0]
    # the token names the endpoint it was asked to (127.0.0.1), which no verifier lists
    assert not v["ok"] and "hostname" in v["error"]
