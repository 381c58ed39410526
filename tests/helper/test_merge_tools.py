"""The kubeconfig merge against the real tools that share the file: kubectl
(use-context, set-context --namespace, view, its FILE.lock) and awscli's
`eks update-kubeconfig` (against a DescribeCluster stand-in). What they write
survives the next merge, our entries are updated, kubectl reads every result,
and both tools keep our extension marker. Runs build/tests/kc-merge, a test
front end of the library the user-side writer calls."""
import json
import base64
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BUILD, run
from standins import AwsStandin, make_tls

KC_MERGE = BUILD / "tests" / "kc-merge"
MARKER = "pam-kubeconfig"
ARN = "arn:aws:eks:us-west-2:111122223333:cluster/other"
KINDS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))

USER_CONFIG = """apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://mine.example"}
- name: home
  cluster: {server: "https://home.example"}
contexts:
- name: home
  context: {cluster: home, user: me}
users:
- name: me
  user: {token: my-own}
current-context: home
"""


@pytest.fixture
def home(tmp_path):
    """A ~/.kube with the user's own config and a CA for our entries."""
    kube = tmp_path / ".kube"
    kube.mkdir()
    (kube / "config").write_text(USER_CONFIG)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return tmp_path


def entries(home, *names, server="https://{}.example:6443", inline=False):
    out = []
    for n in names:
        e = {"name": n, "server": server.format(n), "ca_file": str(home / "ca.pem"), "namespace": f"team-{n}"}
        if inline:
            e["token"] = f"inline-token-{n}"
        else:
            e["token_file"] = f"/run/pam_kubeconfig/1000/{n}.token"
        out.append(e)
    return out


def merge(home, ents, check=True):
    kube = home / ".kube"
    p = subprocess.run([KC_MERGE, kube / "config-eks", kube / "config"], input=json.dumps(ents),
                       capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p


def kubectl(home, *args, check=True, kubeconfig=None):
    kube = home / ".kube"
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           "KUBECONFIG": kubeconfig or f"{kube / 'config-eks'}:{kube / 'config'}"}
    return run(["kubectl", *args], env=env, check=check, timeout=60)


def load(path):
    return yaml.safe_load(Path(path).read_text())


def entry(doc, kind, name):
    for e in doc.get(kind) or []:
        if e.get("name") == name:
            return e
    return None


def is_marked(doc, kind, inner, name):
    e = entry(doc, kind, name)
    return e is not None and any(x.get("name") == MARKER for x in (e[inner] or {}).get("extensions") or [])


def assert_ours(doc, name, server=None):
    for kind, inner in KINDS:
        assert is_marked(doc, kind, inner, name), f"{kind} {name} lost the marker:\n{yaml.safe_dump(doc)}"
    if server:
        assert entry(doc, "clusters", name)["cluster"]["server"] == server


def kubectl_reads(home, path):
    """The real kubectl parses the file alone and returns its view."""
    view = json.loads(kubectl(home, "config", "view", "-o", "json", kubeconfig=str(path)).stdout)
    assert view["kind"] == "Config"
    return view


@pytest.fixture
def eks(tmp_path):
    """DescribeCluster for "other", answered by the EKS stand-in over HTTPS."""
    tls = tmp_path / "tls"
    tls.mkdir()
    ca = make_tls(tls)
    pem = b"-----BEGIN CERTIFICATE-----\nT1RIRVI=\n-----END CERTIFICATE-----\n"
    server = AwsStandin(tls, clusters={"other": {
        "endpoint": "https://other.example", "ca": base64.b64encode(pem).decode(),
        "arn": "arn:aws:eks:us-west-2:111122223333:cluster/other"}})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_CA_BUNDLE": str(ca),
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "AWS_EC2_METADATA_DISABLED": "true"}
    yield server, env
    server.close()


def update_kubeconfig(eks, path, *extra):
    server, env = eks
    return run(["aws", "eks", "update-kubeconfig", "--kubeconfig", path, "--name", "other", "--region", "us-west-2",
                "--endpoint-url", server.url, *extra], env=env, timeout=120)


def test_tools_changes_survive_the_next_merge(home, eks):
    kube = home / ".kube"
    eks_file = kube / "config-eks"
    first = merge(home, entries(home, "a", "b"))
    assert first["changed"]
    # "a" is also a cluster of the user's own file: said at login.
    assert any(n.startswith('"a" is also a cluster name in ~/.kube/config') for n in first["notes"]), first
    # Both files' contexts in one session, ours first.
    names = kubectl(home, "config", "get-contexts", "-o", "name").stdout.split()
    assert set(names) == {"a", "b", "home"}

    before_tools = load(eks_file)
    update_kubeconfig(eks, eks_file)
    after_aws = load(eks_file)
    for kind, _ in KINDS:  # awscli rewrote the file and kept our entries, marker included
        assert [entry(after_aws, kind, n) for n in ("a", "b")] == [entry(before_tools, kind, n) for n in ("a", "b")]
    kubectl(home, "config", "use-context", "b")
    kubectl(home, "config", "set-context", "--current", "--namespace=x")
    after_tools = load(eks_file)
    # The tools wrote into config-eks (the first file of KUBECONFIG) and kept our marker.
    for name in ("a", "b"):
        assert_ours(after_tools, name)
    assert after_tools["current-context"] == "b"
    assert entry(after_tools, "contexts", "b")["context"]["namespace"] == "x"
    theirs = {kind: entry(after_tools, kind, ARN) for kind, _ in KINDS}
    assert all(theirs.values()), after_tools
    assert load(kube / "config") == yaml.safe_load(USER_CONFIG)  # the user's own file untouched

    # The next login: b moved, c is new, a went.
    second = merge(home, entries(home, "b", "c", server="https://{}.new.example"))
    assert second["changed"]
    doc = load(eks_file)
    assert_ours(doc, "b", "https://b.new.example")
    assert_ours(doc, "c", "https://c.new.example")
    assert all(entry(doc, kind, "a") is None for kind, _ in KINDS)
    assert doc["current-context"] == "b"
    assert entry(doc, "contexts", "b")["context"]["namespace"] == "x"
    assert entry(doc, "contexts", "c")["context"]["namespace"] == "team-c"
    assert {kind: entry(doc, kind, ARN) for kind, _ in KINDS} == theirs
    assert doc["preferences"] == after_tools["preferences"]
    view = kubectl_reads(home, eks_file)
    assert {c["name"] for c in view["contexts"]} == {"b", "c", ARN}
    assert merge(home, entries(home, "b", "c", server="https://{}.new.example"))["changed"] is False

    # The aws entry is usable as current-context, and stays so across a login.
    kubectl(home, "config", "use-context", ARN)
    assert merge(home, entries(home, "b", "c", server="https://{}.new.example"))["changed"] is False
    assert load(eks_file)["current-context"] == ARN


def test_kubectl_rewrite_keeps_marker_bytes(home):
    """kubectl re-serialises the whole file on every config change: our entries
    come out byte for byte as we wrote them (same key order and quoting), so a
    merge after it writes nothing."""
    eks_file = home / ".kube" / "config-eks"
    merge(home, entries(home, "a", "prod"))
    before = eks_file.read_text()
    kubectl(home, "config", "use-context", "prod")
    after = eks_file.read_text()
    assert after == before.replace("current-context: a\n", "current-context: prod\n")
    assert merge(home, entries(home, "a", "prod"))["changed"] is False


def test_entry_awscli_replaced_is_left_alone(home, eks):
    """`aws eks update-kubeconfig --alias b` replaces our context "b" whole: the
    marker goes with it, the merge leaves that context and says so."""
    eks_file = home / ".kube" / "config-eks"
    merge(home, entries(home, "a", "b"))
    update_kubeconfig(eks, eks_file, "--alias", "b")
    replaced = entry(load(eks_file), "contexts", "b")
    assert not is_marked(load(eks_file), "contexts", "context", "b")
    res = merge(home, entries(home, "a", "b", server="https://{}.moved.example"))
    assert res["notes"][0] == ('context "b" has no pam-kubeconfig marker (another tool or you rewrote it): it is left '
                               'as it is and its cluster and user are no longer updated at login; delete it to have '
                               'ours written again')
    assert res["notes"][1:] == ['"a" is also a cluster name in ~/.kube/config: kubectl uses this file\'s, listed '
                                'first in KUBECONFIG']
    doc = load(eks_file)
    assert entry(doc, "contexts", "b") == replaced
    assert is_marked(doc, "clusters", "cluster", "b") and is_marked(doc, "users", "user", "b")
    assert entry(doc, "clusters", "b")["cluster"]["server"] == "https://b.moved.example"
    kubectl_reads(home, eks_file)


def test_current_context_in_users_file_kept(home):
    merge(home, entries(home, "a"))
    kubectl(home, "config", "use-context", "home")
    eks_file = home / ".kube" / "config-eks"
    assert load(eks_file)["current-context"] == "home"  # kubectl writes it into the first file
    assert merge(home, entries(home, "a"))["changed"] is False
    assert kubectl(home, "config", "current-context").stdout.strip() == "home"
    # The user's file no longer has it: back to ours, and said.
    (home / ".kube" / "config").write_text(USER_CONFIG.replace("- name: home\n  context", "- name: away\n  context"))
    res = merge(home, entries(home, "a"))
    assert res["notes"][0] == 'current-context "home" named no context any more: it is now "a"'
    assert kubectl(home, "config", "current-context").stdout.strip() == "a"


OLD_FILE = """# Written by pam-kubeconfig on bastion for alice at login; tokens expire 2026-11-29T08:46:40Z.
# Replaced at each login and removed at the last logout: do not edit.
# pam-kubeconfig-host-id: 0123abcd
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster:
    server: https://a.example:6443
    insecure-skip-tls-verify: true
contexts:
- name: a
  context:
    cluster: a
    user: a
    namespace: team-a
current-context: a
users:
- name: a
  user:
    token: OLD-SECRET-TOKEN
"""


@pytest.mark.parametrize("kubectl_first", [False, True])
def test_old_file_loses_its_token(home, kubectl_first):
    """A file of the writer before markers, as it was or after kubectl rewrote
    it (the header comment gone): the next merge makes its entries marked ones
    and the token goes."""
    eks_file = home / ".kube" / "config-eks"
    eks_file.write_text(OLD_FILE)
    if kubectl_first:
        kubectl(home, "config", "set-context", "--current", "--namespace=x")
        assert "pam-kubeconfig-host-id" not in eks_file.read_text()
        assert "OLD-SECRET-TOKEN" in eks_file.read_text()
    res = merge(home, entries(home, "a"))
    assert res["changed"] and res["notes"] == ['"a" is also a cluster name in ~/.kube/config: kubectl uses this '
                                               "file's, listed first in KUBECONFIG"]
    text = eks_file.read_text()
    assert "OLD-SECRET-TOKEN" not in text and "#" not in text
    doc = load(eks_file)
    assert_ours(doc, "a", "https://a.example:6443")
    assert entry(doc, "users", "a")["user"]["tokenFile"] == "/run/pam_kubeconfig/1000/a.token"
    kubectl_reads(home, eks_file)


def test_inline_token_round_trip(home):
    eks_file = home / ".kube" / "config-eks"
    merge(home, entries(home, "a", inline=True))
    view = kubectl_reads(home, eks_file)
    assert view["users"][0]["user"]["token"] == "REDACTED"  # kubectl read a token there
    raw = json.loads(kubectl(home, "config", "view", "--raw", "-o", "json", kubeconfig=str(eks_file)).stdout)
    assert raw["users"][0]["user"]["token"] == "inline-token-a"
    merge(home, entries(home, "a"))
    assert "inline-token" not in eks_file.read_text()
    raw = json.loads(kubectl(home, "config", "view", "--raw", "-o", "json", kubeconfig=str(eks_file)).stdout)
    assert raw["users"][0]["user"] == {"tokenFile": "/run/pam_kubeconfig/1000/a.token",
                                       "extensions": raw["users"][0]["user"]["extensions"]}


def test_logout_removes_only_ours(home, eks):
    eks_file = home / ".kube" / "config-eks"
    merge(home, entries(home, "a", "b"))
    alone = merge(home, [])
    assert alone["empty"] and not eks_file.exists()  # nothing else was there: the file goes
    merge(home, entries(home, "a", "b"))
    update_kubeconfig(eks, eks_file)
    res = merge(home, [])
    assert res["changed"] and not res["empty"]
    doc = load(eks_file)
    for kind, inner in KINDS:
        assert [e["name"] for e in doc[kind]] == [ARN]
    assert doc["current-context"] == ARN
    kubectl_reads(home, eks_file)


@pytest.mark.parametrize("content,why", [
    ("clusters: [\n", "not valid YAML"),
    ("a: &x 1\nb: *x\n", "an alias"),
    ("users: []\nusers: []\n", 'the key "users" appears twice'),
    (" " * (1024 * 1024 + 1), "more than the 1048576"),
])
def test_unusable_file_left_as_it_is(home, content, why):
    eks_file = home / ".kube" / "config-eks"
    eks_file.write_text(content)
    p = merge(home, entries(home, "a"), check=False)
    assert p.returncode == 1 and why in p.stderr, p.stderr
    assert eks_file.read_text() == content


def test_kubectl_lock_file(home):
    """How kubectl guards a change (client-go clientcmd.ModifyConfig): it
    creates FILE.lock with O_CREAT|O_EXCL for every file of KUBECONFIG before it
    reads, fails at once when one exists (no wait, no retry), leaves a lock it
    did not create, and removes its own when done. Readers take no lock."""
    kube = home / ".kube"
    merge(home, entries(home, "a", "b"))
    before = (kube / "config-eks").read_bytes()
    for locked in ("config-eks", "config"):
        lock = kube / f"{locked}.lock"
        lock.write_text("")
        p = kubectl(home, "config", "use-context", "b", check=False)
        assert p.returncode != 0 and f"{lock}: file exists" in p.stderr, p.stderr
        assert lock.exists() and (kube / "config-eks").read_bytes() == before
        assert kubectl(home, "config", "get-contexts", "-o", "name").returncode == 0  # reading ignores it
        lock.unlink()
    kubectl(home, "config", "use-context", "b")
    assert sorted(os.listdir(kube)) == ["config", "config-eks"]  # its own locks are gone
