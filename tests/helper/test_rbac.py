"""`rbac` and `check --online` against the real test cluster: one cluster's
manifest at a time, cluster_wide deletes limited to the helper's own bindings,
`check --online` probing exactly the rules `rbac` prints, and the warnings about
roles that let one mapped user undo another's isolation."""
import copy
import json
import os
import re
import secrets
import time
from pathlib import Path

import pytest
import yaml

from conftest import helper, kubeconfig_of, kubectl_as, run, security, token_in


def apply(cluster, text, verb="apply"):
    return run(["kubectl", "--kubeconfig", cluster.admin_kubeconfig, verb, "-f", "-"], input=text)


def manifest(cfg, *extra):
    p = helper("rbac", "--config", cfg, *extra)
    assert p.returncode == 0, p.stderr
    return p.stdout


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def open_session(user, cfg, rhost="198.51.100.7"):
    """A login. Right after a manifest is applied the API server's authorizer
    may not have seen it yet (its caches follow within moments): a 403 then is
    retried for a few seconds, any other failure is returned at once."""
    deadline = time.monotonic() + 10
    while True:
        session = secrets.token_hex(8)
        p = helper("open", "--user", user, "--session", session, "--config", cfg, "--rhost", rhost,
                   "--service", "sshd", "--pid", str(os.getpid()))
        if p.returncode == 0 or "(403)" not in p.stderr or time.monotonic() > deadline:
            return p, session
        close_session(user, cfg, session)
        time.sleep(0.5)


def close_session(user, cfg, session):
    return helper("close", "--user", user, "--session", session, "--config", cfg, "--pid", str(os.getpid()))


def drop_cluster_wide(cluster):
    """The ClusterRole and binding only these tests make (config/rbac/minter.yaml has none)."""
    cluster.kubectl("delete", "clusterrolebinding,clusterrole", "pam-kubeconfig-minter", "--ignore-not-found")


def two_cluster_config(workdir):
    return workdir.write_config("""  - user: "*"
    cluster: one
    serviceaccount: ns-one/u-{user_safe}
    create: true
    clusterrole: view
  - user: "*"
    cluster: two
    serviceaccount: ns-two/u-{user_safe}
""", clusters=[workdir.cluster_entry("one"), workdir.cluster_entry("two")])


@security("rbac prints one cluster's objects at a time; with several clusters it needs --cluster")
def test_rbac_prints_one_cluster(workdir):
    cfg = two_cluster_config(workdir)
    p = helper("rbac", "--config", cfg)
    assert p.returncode == 2 and p.stdout == ""
    assert f"{cfg}: the config has 2 clusters: give --cluster NAME" in p.stderr
    for name, other in (("one", "two"), ("two", "one")):
        out = manifest(cfg, "--cluster", name)
        namespaces = {d["metadata"].get("namespace") or d["metadata"]["name"] for d in docs(out)
                      if d["kind"] != "ClusterRole"}
        assert namespaces == {f"ns-{name}"}, out
        assert f'on cluster "{name}"' in out and f"rbac --cluster {name}`" in out
        assert f"ns-{other}" not in out
    p = helper("rbac", "--config", cfg, "--cluster", "three")
    assert p.returncode == 2 and "no cluster named 'three'" in p.stderr
    # One cluster: no need to name it.
    single = workdir.write_config('  - user: "*"\n    cluster: test\n    serviceaccount: ns-x/u-{user_safe}\n')
    assert "ns-x" in manifest(single)


@security("cluster_wide: the helper may replace its own ClusterRoleBinding and may not delete any other")
def test_cluster_wide_deletes_only_its_own_bindings(cluster, workdir, users):
    tag = secrets.token_hex(3)
    ns, other = f"kc-wide-{tag}", f"kc-other-{tag}"
    user = users.make()
    rule = (f"  - user: {user}\n    cluster: test\n    serviceaccount: {ns}/wide\n    create: true\n"
            f"    clusterrole: ROLE\n    cluster_wide: true\n")
    cfg = workdir.write_config(rule.replace("ROLE", "view"))
    text = manifest(cfg)
    own = f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/pam-kubeconfig:{ns}:wide"
    cluster.kubectl("create", "clusterrolebinding", other, "--clusterrole=view", "--user=nobody-at-all")
    try:
        apply(cluster, text)
        p, s = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        got = cluster.kubectl("get", "clusterrolebinding", f"pam-kubeconfig:{ns}:wide", "-o",
                              "jsonpath={.roleRef.name}")
        assert got.stdout == "view"
        close_session(user, cfg, s)

        # The config's role changes: with the manifest for it, the helper
        # deletes its own binding and makes it anew (roleRef is immutable).
        cfg = workdir.write_config(rule.replace("ROLE", "edit"))
        apply(cluster, manifest(cfg))
        p, s = open_session(user, cfg)
        assert p.returncode == 0, p.stderr
        got = cluster.kubectl("get", "clusterrolebinding", f"pam-kubeconfig:{ns}:wide", "-o",
                              "jsonpath={.roleRef.name}")
        assert got.stdout == "edit"
        close_session(user, cfg, s)

        # Any other ClusterRoleBinding: neither read nor deleted, by the minter's own token.
        token = cluster.minter_token()
        theirs = f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{other}"
        assert cluster.request("DELETE", theirs, token)[0] == 403  # a throwaway: a regression must not cost more
        for path in (theirs, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin"):
            assert cluster.request("GET", path, token)[0] == 403
        assert cluster.kubectl("get", "clusterrolebinding", other).returncode == 0
        assert cluster.request("GET", own, token)[0] == 200
        assert cluster.request("DELETE", own, token)[0] == 200

        # What made it so: delete (and get) by name; create, which Kubernetes
        # cannot limit by name, in a rule of its own.
        role = next(d for d in docs(text) if d["kind"] == "ClusterRole")
        assert {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
                "resourceNames": [f"pam-kubeconfig:{ns}:wide"], "verbs": ["get", "delete"]} in role["rules"]
        assert not [r for r in role["rules"] if "delete" in r["verbs"] and "resourceNames" not in r]
    finally:
        cluster.kubectl("delete", "clusterrolebinding", other, f"pam-kubeconfig:{ns}:wide", "--ignore-not-found")
        drop_cluster_wide(cluster)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# ---- check --online probes every rule of the manifest -----------------------------------

def expected_missing(rule, ns):
    """The permissions `check --online` names when this rule is gone."""
    where = f"in namespace {ns}" if ns else "cluster-wide"
    return {f"{verb} {rule['resources'][0]}{' ' + name if name else ''} {where}"
            for verb in rule["verbs"] for name in rule.get("resourceNames") or [None]}


def missing_lines(cfg):
    """What `check --online` says is missing: "cluster C: missing: WHAT; apply ..."."""
    p = helper("check", "--online", "--config", cfg)
    return p, set(re.findall(r"^cluster test: missing: (.*?); apply the output of pam-kubeconfig rbac", p.stderr,
                             re.M))


def wait_for(cfg, want, limit=20):
    """RBAC changes reach the authorizer within moments: poll until check says want."""
    deadline = time.monotonic() + limit
    while True:
        p, got = missing_lines(cfg)
        if got == want or time.monotonic() > deadline:
            return p, got
        time.sleep(0.3)


@security("check --online probes every rule rbac prints: remove any one and check names exactly it")
def test_check_online_names_each_removed_rule(cluster, workdir, users):
    tag = secrets.token_hex(3)
    a, b = f"kc-probe-a-{tag}", f"kc-probe-b-{tag}"
    cfg = workdir.write_config(f"""  - user: fixed-one
    cluster: test
    serviceaccount: {a}/one
    create: true
    clusterrole: edit
  - user: fixed-two
    cluster: test
    serviceaccount: {a}/two
    create: true
    clusterrole: edit
  - group: kc-probe-wide
    cluster: test
    serviceaccount: {a}/wide
    create: true
    clusterrole: admin
    cluster_wide: true
  - user: "*"
    cluster: test
    serviceaccount: {b}/u-{{user_safe}}
    create: true
    clusterrole: view
""")
    text = manifest(cfg)
    all_docs = docs(text)
    roles = [d for d in all_docs if d["kind"] in ("Role", "ClusterRole")]
    n_rules = sum(len(r["rules"]) for r in roles)
    apply(cluster, text)
    try:
        p, got = wait_for(cfg, set())
        assert p.returncode == 0 and got == set(), p.stderr
        assert "holds every permission it needs" in p.stdout
        named = 0
        for role in roles:
            for i, rule in enumerate(role["rules"]):
                cut = copy.deepcopy(role)
                del cut["rules"][i]
                apply(cluster, yaml.safe_dump(cut), verb="replace")
                want = expected_missing(rule, role["metadata"].get("namespace"))
                p, got = wait_for(cfg, want)
                assert got == want, f"without {rule} in {role['kind']}: {sorted(got)}\n{p.stderr}"
                assert p.returncode == 1
                named += 1
                apply(cluster, yaml.safe_dump(role), verb="replace")
                p, got = wait_for(cfg, set())
                assert got == set(), p.stderr
        assert named == n_rules == 15, text  # 7 in a, 5 in b, 3 cluster-wide
    finally:
        drop_cluster_wide(cluster)
        for ns in (a, b):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_check_online_probes_every_named_serviceaccount(cluster, workdir):
    """No cap: 60 ServiceAccounts named in one namespace are each probed."""
    ns = f"kc-many-{secrets.token_hex(3)}"
    rules = "".join(f"  - user: u{i}\n    cluster: test\n    serviceaccount: {ns}/sa{i}\n" for i in range(60))
    cfg = workdir.write_config(rules)
    text = manifest(cfg)
    role = next(d for d in docs(text) if d["kind"] == "Role")
    token_rule = role["rules"][0]
    assert len(token_rule["resourceNames"]) == 60
    token_rule["resourceNames"].remove("sa59")  # the last one: beyond the old cap of 50
    apply(cluster, yaml.safe_dump_all([d for d in docs(text) if d["kind"] != "Role"] + [role]))
    try:
        want = {f"create serviceaccounts/token sa59 in namespace {ns}"}
        p, got = wait_for(cfg, want)
        assert got == want, p.stderr
        assert (f"cluster test: missing: create serviceaccounts/token sa59 in namespace {ns}; apply the output "
                "of pam-kubeconfig rbac --cluster test") in p.stderr.splitlines()
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# ---- roles that break isolation between users ------------------------------------------

def token_of(users, user):
    """The user's token: in the file the kubeconfig names (tokenFile), or inline."""
    kc = kubeconfig_of(users, user)
    named = re.search(r"^\s*tokenFile:\s*['\"]?([^'\"\n]+)", kc.read_text(), re.M)
    return Path(named.group(1)).read_text().strip() if named else token_in(kc)


def revocation_secret(cluster, ns, user):
    out = cluster.kubectl("-n", ns, "get", "secrets", "-l", "app.kubernetes.io/managed-by=pam-kubeconfig",
                          "-o", "json")
    for item in json.loads(out.stdout)["items"]:
        if user in (item["metadata"].get("annotations") or {}).values():
            return item["metadata"]["name"]
    raise AssertionError(f"no revocation Secret of {user} in {ns}")


@security("check warns when a mapped role lets users delete each other's revocation Secrets or act as "
          "each other (edit in a shared namespace); --online asks the API server as each ServiceAccount")
def test_check_warns_about_roles_that_break_isolation(cluster, workdir, users):
    ns = f"kc-shared-{secrets.token_hex(3)}"
    rule = f'  - user: "*"\n    cluster: test\n    serviceaccount: {ns}/u-{{user_safe}}\n    create: true\n' \
           f'    clusterrole: ROLE\n'
    cfg = workdir.write_config(rule.replace("ROLE", "edit"))
    apply(cluster, manifest(cfg))
    a, b = users.make(), users.make()
    try:
        sessions = {}
        for u in (a, b):
            p, sessions[u] = open_session(u, cfg)
            assert p.returncode == 0, p.stderr

        p = helper("check", "--config", cfg)
        assert p.returncode == 0
        assert (f"{cfg}:8:5: warning: ClusterRole edit bound in namespace {ns}, which several users share, can "
                "delete Secrets") in p.stderr, p.stderr

        p = helper("check", "--online", "--config", cfg)
        assert p.returncode == 0, p.stderr
        for u in (a, b):
            assert re.search(rf"warning: ServiceAccount {ns}/u-{u} \(rule at {re.escape(str(cfg))}:8:5, "
                             rf"ClusterRole edit\) can delete Secrets in namespace {ns}:", p.stderr), p.stderr

        # The warning is true: a deletes b's revocation Secret, and b's token dies with it.
        token = token_of(users, b)
        assert cluster.whoami(token) == f"system:serviceaccount:{ns}:u-{b}"
        gone = kubectl_as(a, kubeconfig_of(users, a), "-n", ns, "delete", "secret", revocation_secret(cluster, ns, b))
        assert gone.returncode == 0, gone.stderr
        cluster.wait_refused(token)
        for u in (a, b):
            close_session(u, cfg, sessions[u])

        # With view nobody can: no warning, offline or online. (check --online
        # asks about the bindings the cluster holds: they are made view here.)
        cfg = workdir.write_config(rule.replace("ROLE", "view"))
        apply(cluster, manifest(cfg))
        for u in (a, b):
            cluster.kubectl("-n", ns, "delete", "rolebinding", f"pam-kubeconfig:u-{u}")
            cluster.kubectl("-n", ns, "create", "rolebinding", f"pam-kubeconfig:u-{u}", "--clusterrole=view",
                            f"--serviceaccount={ns}:u-{u}")
            p, sessions[u] = open_session(u, cfg)
            assert p.returncode == 0, p.stderr
        p = helper("check", "--online", "--config", cfg)
        assert p.returncode == 0, p.stderr
        assert "warning: ClusterRole" not in p.stderr and "can delete Secrets" not in p.stderr, p.stderr
        assert "can create tokens" not in p.stderr
        for u in (a, b):
            close_session(u, cfg, sessions[u])
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@security("check --online names each mapped ServiceAccount that can still write the fleet's namespace (the "
          "locks) or remove the ValidatingAdmissionPolicy that keeps it; with the policy no write gets through")
def test_check_online_names_who_can_write_the_fleets_namespace(cluster, workdir):
    fleet = f"kc-fleet-{secrets.token_hex(3)}"
    apps = f"kc-apps-{secrets.token_hex(3)}"
    policy = f"pam-kubeconfig-minter-{fleet}"
    cluster.ensure_sa(apps, "editor")
    cfg = workdir.write_config(f"  - user: \"*\"\n    cluster: test\n    serviceaccount: {apps}/editor\n",
                               extra=f"fleet:\n  namespace: {fleet}\n")
    text = manifest(cfg)
    assert [d["kind"] for d in docs(text)].count("ValidatingAdmissionPolicy") == 1
    apply(cluster, text)
    cluster.kubectl("-n", fleet, "create", "rolebinding", "editor", "--clusterrole=edit",
                    f"--serviceaccount={apps}:editor")
    remover = f"kc-vap-remover-{secrets.token_hex(3)}"
    try:
        # The policy stands (once the API server has loaded it): edit in the
        # namespace gets nothing written there, and check names nobody.
        token = cluster.kubectl("-n", apps, "create", "token", "editor", "--duration=10m").stdout.strip()
        body = {"metadata": {"name": "lock-forged"}, "data": {"until": "0"}}

        def settle(refused):
            """The API server loads and drops policies a moment after the change."""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status, _ = cluster.request("POST", f"/api/v1/namespaces/{fleet}/configmaps?dryRun=All", token,
                                            body)
                if (status == 403) == refused:
                    return
                time.sleep(0.5)

        settle(True)
        status, answer = cluster.request("POST", f"/api/v1/namespaces/{fleet}/configmaps", token, body)
        assert status == 403 and "only pam-kubeconfig writes" in answer.get("message", ""), (status, answer)
        p = helper("check", "--online", "--config", cfg)
        assert "can write ConfigMaps in the fleet's namespace" not in p.stderr, p.stderr
        assert "can delete validatingadmissionpolic" not in p.stderr, p.stderr

        # Without its binding, edit writes the namespace: check names the account and the fix.
        cluster.kubectl("delete", "validatingadmissionpolicybinding", policy)
        settle(False)
        p = helper("check", "--online", "--config", cfg)
        assert re.search(rf"warning: ServiceAccount {apps}/editor \(rule at {re.escape(str(cfg))}:\d+:\d+, "
                         rf"[^)]*\) can write ConfigMaps in the fleet's namespace {fleet}: every user mapped to "
                         rf"it can lift a lock; apply the ValidatingAdmissionPolicy", p.stderr), p.stderr

        # Back with the policy, a role that may delete it is named too.
        apply(cluster, text)
        settle(True)
        cluster.kubectl("create", "clusterrole", remover, "--verb=delete",
                        "--resource=validatingadmissionpolicybindings.admissionregistration.k8s.io")
        cluster.kubectl("create", "clusterrolebinding", remover, f"--clusterrole={remover}",
                        f"--serviceaccount={apps}:editor")
        p = helper("check", "--online", "--config", cfg)
        assert "can write ConfigMaps in the fleet's namespace" not in p.stderr, p.stderr
        assert f"ServiceAccount {apps}/editor" in p.stderr and \
            "can delete validatingadmissionpolicybindings: every user mapped to it can remove the policy" \
            in p.stderr, p.stderr
    finally:
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", remover, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy,
                        "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", fleet, apps, "--wait=false", check=False)
