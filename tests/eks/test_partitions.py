"""The partition table is botocore's data: regenerating it from the installed
botocore gives the committed file byte for byte, and for every region botocore
names (and a few it does not), every variant, STS and EKS, our resolver and
botocore's own rule-set engine give the same host, signing region and
partition, or both refuse."""
import json
import subprocess
from pathlib import Path

from fixtures import HERE

REPO = HERE.parents[1]
BUILD = REPO / "build"


def test_generated_table_has_not_drifted_from_the_installed_botocore():
    p = subprocess.run([str(REPO / "tools/gen-aws-partitions"), "--output", "-"], capture_output=True, text=True,
                       check=True)
    committed = (REPO / "helper/aws/aws_partitions.c").read_text()
    assert p.stdout == committed, ("helper/aws/aws_partitions.c differs from what tools/gen-aws-partitions makes "
                                   "from the installed botocore: run the script and commit the result")
    # and it carries what the issue names
    for partition in ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"):
        assert f'.id = "{partition}"' in committed
    assert '{ "eks", "aws", "fips.eks.{region}.amazonaws.com" }' in committed
    assert '{ "sts", "aws-us-gov", "sts.{region}.amazonaws.com" }' in committed


def botocore_resolutions(cases):
    from botocore.endpoint_provider import EndpointProvider, RuleSetStandardLibrary
    from botocore.exceptions import EndpointResolutionError
    from botocore.loaders import create_loader

    loader = create_loader()
    partitions = loader.load_data("partitions")
    providers = {s: EndpointProvider(loader.load_service_model(s, "endpoint-rule-set-1"), partitions)
                 for s in ("sts", "eks")}
    lib = RuleSetStandardLibrary(partitions)
    out = []
    for service, region, fips, dualstack, legacy in cases:
        params = {"Region": region, "UseFIPS": fips, "UseDualStack": dualstack}
        if service == "sts":
            params["UseGlobalEndpoint"] = legacy
        try:
            ep = providers[service].resolve_endpoint(**params)
        except EndpointResolutionError:
            out.append("error")
            continue
        schemes = ep.properties.get("authSchemes") or [{}]
        host = ep.url.removeprefix("https://")
        out.append(f"{host} {schemes[0].get('signingRegion', region)} {lib.aws_partition(region)['name']}")
    return out


def test_every_region_and_variant_resolves_as_botocore_does():
    data = Path(__import__("botocore").__file__).parent / "data" / "partitions.json"
    regions = sorted({r for p in json.loads(data.read_text())["partitions"] for r in p["regions"]})
    regions += ["cn-south-9", "us-gov-north-7", "eusc-de-west-2", "us-isof-north-3", "xx-mars-1", "me-west-9"]
    cases = [(s, r, f, d, g) for s in ("sts", "eks") for r in regions for f in (False, True) for d in (False, True)
             for g in ((False, True) if s == "sts" else (False,))]
    want = botocore_resolutions(cases)
    p = subprocess.run([str(BUILD / "tests/unit/test_aws_endpoints"), "--resolve"], capture_output=True, text=True,
                       input="".join(f"{s} {r} {int(f)} {int(d)} {int(g)}\n" for s, r, f, d, g in cases), check=True)
    got = p.stdout.splitlines()
    assert len(got) == len(cases)
    wrong = [(c, w, g) for c, w, g in zip(cases, want, got) if w != g]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:5]}"
    assert len(cases) > 500
    assert "sts.cn-north-1.amazonaws.com.cn cn-north-1 aws-cn" in got
    assert "sts.eusc-de-east-1.amazonaws.eu eusc-de-east-1 aws-eusc" in got
