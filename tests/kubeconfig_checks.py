"""What the tests of issue 14 look at in a user's kubeconfig, as the user would:
our marked entries, the file as YAML and as the real kubectl reads it, the
user's own ~/.kube/config, and whether a token reached the home."""
import base64
import json
import os
import pwd
from pathlib import Path

import yaml

from conftest import run

MARKER = "pam-kubeconfig"
KINDS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
WHO = "system:serviceaccount:team-a:alice"

# The user's own ~/.kube/config: a context of their own ("home") and one named
# like ours ("test"), which the login must name as a clash.
USER_CONFIG = """apiVersion: v1
kind: Config
clusters:
- name: home-cluster
  cluster:
    server: https://home.example:6443
- name: test
  cluster:
    server: https://my-own-test.example:6443
contexts:
- name: home
  context:
    cluster: home-cluster
    user: me
- name: test
  context:
    cluster: test
    user: me
users:
- name: me
  user:
    token: my-own-static-token
current-context: home
"""
CLASH_NOTE = ('"test" is also a context and cluster name in ~/.kube/config: kubectl uses this file\'s, listed first '
              'in KUBECONFIG')


def write_as(users, user, path, data, mode=0o600):
    """A file (and its missing parent directories) of the user's, as their tools would leave it."""
    path = Path(path)
    uid = users.uid(user)
    gid = pwd.getpwnam(user).pw_gid
    missing = []
    d = path.parent
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700)
        os.chown(d, uid, gid)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def other_cluster(cluster, name="other"):
    """What the DescribeCluster stand-in (kc-aws-standin) answers for `name`:
    the real test cluster again, under an EKS ARN."""
    ca = base64.b64encode(Path(cluster.ca_file).read_bytes()).decode()
    return {name: {"endpoint": cluster.server, "ca": ca,
                   "arn": f"arn:aws:eks:us-west-2:111122223333:cluster/{name}"}}


def write_aws_config(users, user, ca_bundle):
    """The user's own awscli settings: a region, the stand-ins' CA, and the
    example key of AWS's documentation (the stand-in only checks the form)."""
    home = users.home(user)
    write_as(users, user, home / ".aws" / "config", f"[default]\nregion = us-west-2\nca_bundle = {ca_bundle}\n")
    write_as(users, user, home / ".aws" / "credentials",
             "[default]\naws_access_key_id = AKIDEXAMPLE\n"
             "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")


def session_kubeconfig(users, user):
    home = users.home(user)
    return f"{home}/.kube/config-eks:{home}/.kube/config"


def kubectl_user(user, *args, kubeconfig=None, prefix=(), check=False, timeout=60):
    """The real kubectl run as the user (through prefix, e.g. nsenter into a
    simulated host), with the session's KUBECONFIG."""
    home = pwd.getpwnam(user).pw_dir
    kc = kubeconfig or f"{home}/.kube/config-eks:{home}/.kube/config"
    return run([*prefix, "runuser", "-u", user, "--", *user_env(user, kc), "kubectl", *args], check=check,
               timeout=timeout)


def user_env(user, kubeconfig):
    """`env` with what a login gives the user and nothing of root's environment."""
    home = pwd.getpwnam(user).pw_dir
    return ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", f"HOME={home}", f"USER={user}",
            f"KUBECONFIG={kubeconfig}"]


def whoami(user, prefix=(), context=None):
    args = ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]
    if context:
        args = ["--context", context, *args]
    p = kubectl_user(user, *args, prefix=prefix)
    return p.stdout if p.returncode == 0 else f"failed: {p.stderr.strip()}"


def load(path):
    return yaml.safe_load(Path(path).read_text())


def entry(doc, kind, name):
    for e in (doc or {}).get(kind) or []:
        if e.get("name") == name:
            return e
    return None


def is_marked(doc, kind, inner, name):
    e = entry(doc, kind, name)
    return e is not None and any(x.get("name") == MARKER for x in (e.get(inner) or {}).get("extensions") or [])


def ours(doc, name="test"):
    """Our three entries of a name, as parsed."""
    return {kind: entry(doc, kind, name) for kind, _ in KINDS}


def marked_names(doc):
    return sorted({e["name"] for kind, inner in KINDS for e in (doc or {}).get(kind) or []
                   if is_marked(doc, kind, inner, e.get("name"))})


def assert_ours(doc, name="test", token_file=None):
    for kind, inner in KINDS:
        assert is_marked(doc, kind, inner, name), f"{kind} {name} is not ours:\n{yaml.safe_dump(doc)}"
    user = entry(doc, "users", name)["user"]
    assert "token" not in user, "a token in the kubeconfig"
    if token_file:
        assert user["tokenFile"] == str(token_file)


def kubectl_reads(user, path, prefix=()):
    """The real kubectl, as the user, parses the file alone; returns its view."""
    p = kubectl_user(user, "config", "view", "-o", "json", kubeconfig=str(path), prefix=prefix)
    assert p.returncode == 0, f"kubectl cannot read {path}: {p.stderr}"
    view = json.loads(p.stdout)
    assert view["kind"] == "Config"
    return view


def contexts_listed(user, prefix=()):
    p = kubectl_user(user, "config", "get-contexts", "-o", "name", prefix=prefix)
    assert p.returncode == 0, p.stderr
    return sorted(p.stdout.split())


def home_holds(home, tokens):
    """Files under the home (read as root) that hold one of the tokens."""
    found = []
    for root, _, files in os.walk(home):
        for name in files:
            p = Path(root) / name
            if p.is_symlink():
                continue
            try:
                data = p.read_bytes()
            except OSError:
                continue
            found += [str(p) for t in tokens if t and t.encode() in data]
    return found


def temp_files(kube):
    return [n for n in os.listdir(kube) if n.startswith(".config-eks.")] if Path(kube).is_dir() else []


def items(text):
    """The list items of a block-style kubeconfig as their exact text:
    {(section, name): text}. Both our writer and kubectl write this layout."""
    out, section, cur = {}, None, None

    def flush():
        if cur is not None:
            name = next((l.split(":", 1)[1].strip().strip("'\"") for l in cur
                         if l.startswith(("- name:", "  name:"))), None)
            out[(section, name)] = "".join(cur)

    for line in text.splitlines(keepends=True):
        if line.startswith("- "):
            flush()
            cur = [line]
        elif line.startswith("  ") and cur is not None:
            cur.append(line)
        else:
            flush()
            cur = None
            section = line.split(":", 1)[0] if not line.startswith(" ") else section
    flush()
    return out


def our_items(text, name="test"):
    """The exact bytes of our three entries of a name."""
    found = {k: v for k, v in items(text).items() if k[1] == name}
    assert set(found) == {("clusters", name), ("contexts", name), ("users", name)}, sorted(found)
    return found
