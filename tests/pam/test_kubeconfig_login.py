"""Issue 14 through the real libpam (the session driver holds sessions): the
user's own ~/.kube/config (a file, a symlink, a file with an anchor) keeps its
current-context and its clash note; a context awscli took over is left and told;
a login while kubectl holds ~/.kube/config-eks.lock (a lock it left, and a real
`kubectl config set-context` stopped in the middle of its write); a config-eks
the merge cannot use (not YAML, 10 MB, a directory); and
kubeconfig.remove_on_logout: true."""
import base64
import os
import subprocess
import time

import pytest

from conftest import (REPO, Driver, assert_no_token_left, helper, kubeconfig_of, run, token_path,
                      user_token)
from kubeconfig_checks import (CLASH_NOTE, USER_CONFIG, WHO, assert_ours, entry, home_holds, other_cluster,
                               kubectl_reads, kubectl_user, load, marked_names, temp_files, user_env, whoami,
                               write_as, write_aws_config)
from standins import AwsStandin, make_tls

PAM_SUCCESS = 0
LOCK_LEFT = ("~/.kube/config-eks was left as it was: ~/.kube/config-eks.lock exists (kubectl is changing the file, "
             "or left the lock behind); the file was left as it was")


def infos(d):
    return [l[len("INFO "):] for l in d.lines if l.startswith("INFO ")]


def login(svc, user):
    start = time.monotonic()
    d = Driver(svc, user)
    took = time.monotonic() - start
    assert d.open_rc == PAM_SUCCESS, d.lines
    return d, took


@pytest.fixture
def alice(workdir, users, pam_service):
    """A user mapped to team-a/alice, with their own ~/.kube/config, and a PAM service."""
    user = users.make()
    cfg = workdir.alice_config(user)
    write_as(users, user, users.home(user) / ".kube" / "config", USER_CONFIG)
    return user, cfg, pam_service(f"config={cfg}")


# ---- the user's own ~/.kube/config -----------------------------------------------------------------------------


# The user's file written by hand with a YAML anchor, which kubectl reads.
WITH_ANCHOR = USER_CONFIG.replace("  cluster:\n    server: https://home.example:6443\n",
                                  "  cluster: &home\n    server: https://home.example:6443\n").replace(
    "  cluster:\n    server: https://my-own-test.example:6443\n", "  cluster: *home\n")


@pytest.mark.parametrize("kind", ["file", "symlink", "anchor", "over-1MiB"])
def test_users_own_config_keeps_its_current_context_and_clash_note(cluster, users, alice, kind):
    """`kubectl config use-context home` (a context of the user's own
    ~/.kube/config) survives the next login, and the clash is told, whether
    ~/.kube/config is a plain file, a symlink to the user's own file as dotfile
    managers leave it, a file with a YAML anchor, or a file over 1 MiB (many
    clusters, each with its CA): kubectl reads them all."""
    user, cfg, svc = alice
    home = users.home(user)
    config = home / ".kube" / "config"
    if kind == "over-1MiB":
        ca = base64.b64encode(os.urandom(1500)).decode()
        many = "".join(f"- name: c{i}\n  cluster:\n    certificate-authority-data: {ca}\n"
                       f"    server: https://c{i}.example:6443\n" for i in range(600))
        write_as(users, user, config, USER_CONFIG.replace("clusters:\n", "clusters:\n" + many, 1))
        assert config.stat().st_size > 1024 * 1024
    elif kind == "anchor":
        write_as(users, user, config, WITH_ANCHOR)
        assert "*home" in config.read_text()
    elif kind == "symlink":
        config.unlink()
        write_as(users, user, home / "dotfiles" / "kubeconfig", USER_CONFIG)
        config.symlink_to("../dotfiles/kubeconfig")
        os.lchown(config, users.uid(user), users.uid(user))
    first, _ = login(svc, user)
    assert kubectl_user(user, "config", "use-context", "home").returncode == 0
    assert load(kubeconfig_of(users, user))["current-context"] == "home"  # kubectl wrote it into config-eks
    second, _ = login(svc, user)
    try:
        assert load(kubeconfig_of(users, user))["current-context"] == "home", second.lines
        assert CLASH_NOTE in infos(second), second.lines
    finally:
        for d in (first, second):
            d.close()
    assert_no_token_left(users, user)


def test_context_awscli_took_over_is_left_and_told_at_login(cluster, workdir, users, alice):
    """`aws eks update-kubeconfig --alias test`, run by the user in a session,
    replaces our context "test" whole (our marker goes with it): the next login
    leaves that context as awscli wrote it, keeps our other entries up to date,
    and says so."""
    user, cfg, svc = alice
    kc = kubeconfig_of(users, user)
    home = users.home(user)
    aws = run([REPO / "tests" / "ssh" / "build-awscli"], timeout=600).stdout.strip()
    tls = workdir.path / "eks-tls"
    ca = make_tls(tls)
    tls.chmod(0o755)
    eks = AwsStandin(tls, clusters=other_cluster(cluster))
    write_aws_config(users, user, ca)
    first, _ = login(svc, user)
    try:
        p = run(["runuser", "-u", user, "--", *user_env(user, f"{kc}:{home}/.kube/config"), aws, "eks",
                 "update-kubeconfig", "--name", "other", "--region", "us-west-2", "--alias", "test",
                 "--endpoint-url", eks.url], check=False, timeout=120)
    finally:
        eks.close()
    assert p.returncode == 0 and f"context test to {kc}" in p.stdout, p.stdout + p.stderr
    theirs = entry(load(kc), "contexts", "test")
    assert theirs["context"]["cluster"] == "arn:aws:eks:us-west-2:111122223333:cluster/other"
    second, _ = login(svc, user)
    try:
        assert ('context "test" has no pam-kubeconfig marker (another tool or you rewrote it): it is left as it is '
                "and its cluster and user are no longer updated at login; delete it to have ours written again"
                ) in infos(second), second.lines
        doc = load(kc)
        assert entry(doc, "contexts", "test") == theirs
        assert entry(doc, "users", "test")["user"]["tokenFile"] == str(token_path(users, user))
        kubectl_reads(user, kc)
    finally:
        for d in (first, second):
            d.close()
    assert_no_token_left(users, user)


# ---- kubectl's lock --------------------------------------------------------------------------------------------


def test_login_while_kubectl_left_its_lock_succeeds_and_leaves_the_file(cluster, users, alice, syslog):
    user, cfg, svc = alice
    kc = kubeconfig_of(users, user)
    first, _ = login(svc, user)
    # The user points our cluster elsewhere: the next login has something to repair.
    assert kubectl_user(user, "config", "set-cluster", "test", "--server=https://stale.invalid:6443").returncode == 0
    before = kc.read_bytes()
    # kubectl's lock, as client-go makes it (O_CREAT|O_EXCL, mode 0), by the user.
    lock = kc.with_name("config-eks.lock")
    run(["runuser", "-u", user, "--", "python3", "-c",
         f"import os; os.open({str(lock)!r}, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)"])
    syslog.clear()
    second, took = login(svc, user)
    print(f"\nlogin with kubectl's lock held took {took:.2f}s")
    assert LOCK_LEFT in infos(second), second.lines
    assert f"user {user}: ~/.kube/config-eks: ~/.kube/config-eks.lock exists" in syslog.text()
    assert kc.read_bytes() == before  # not written under kubectl's lock
    assert lock.exists() and os.stat(lock).st_uid == users.uid(user)  # nor its lock taken away
    assert temp_files(kc.parent) == []
    assert cluster.whoami(user_token(users, user)) == WHO  # the login itself went through
    assert 1.0 <= took < 10
    # kubectl done: the next login repairs our entry and says nothing of a lock.
    lock.unlink()
    third, _ = login(svc, user)
    assert not any("was left as it was" in i for i in infos(third)), third.lines
    assert entry(load(kc), "clusters", "test")["cluster"]["server"] == cluster.server
    assert whoami(user) == WHO
    for d in (first, second, third):
        assert d.close() == ["close 0 Success"]
    assert_no_token_left(users, user)


def test_login_while_kubectl_is_mid_write_leaves_the_file_to_kubectl(cluster, users, alice):
    """A real `kubectl config set-context` held between its truncating open and its
    write (strace delays that write): the lock is kubectl's, config-eks is empty at
    that moment; the login goes on without touching the file, and kubectl's write
    lands whole."""
    user, cfg, svc = alice
    kc = kubeconfig_of(users, user)
    lock = kc.with_name("config-eks.lock")
    first, _ = login(svc, user)
    home = users.home(user)
    slow = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=write", "-e", "inject=write:delay_enter=5000000",
         "-P", str(kc), "-u", user, "--", *user_env(user, f"{kc}:{home}/.kube/config"),
         "kubectl", "config", "set-context", "--current", "--namespace=team-b"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (lock.exists() and kc.stat().st_size == 0):
            assert slow.poll() is None and time.monotonic() < deadline, slow.communicate()
            time.sleep(0.02)
        ino = kc.stat().st_ino
        second, took = login(svc, user)
        print(f"\nlogin while kubectl was mid-write took {took:.2f}s")
        assert LOCK_LEFT in infos(second), second.lines
        assert slow.poll() is None, "kubectl finished before the login: the test proves nothing"
        assert kc.stat().st_ino == ino  # no rename over kubectl's file
        assert cluster.whoami(user_token(users, user)) == WHO
    finally:
        out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0 and 'Context "test" modified.' in out, err
    doc = load(kc)  # not torn: kubectl's whole write, with our entries in it
    assert_ours(doc, token_file=token_path(users, user))
    assert entry(doc, "contexts", "test")["context"]["namespace"] == "team-b"
    kubectl_reads(user, kc)
    assert not lock.exists() and temp_files(kc.parent) == []
    after = kc.read_bytes()
    third, _ = login(svc, user)
    assert kc.read_bytes() == after and not any("left as it was" in i for i in infos(third))
    for d in (first, second, third):
        assert d.close() == ["close 0 Success"]
    assert_no_token_left(users, user)


# ---- a config-eks the merge cannot use -------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


@pytest.mark.parametrize("kind,why", [
    ("not-yaml", "line 2, column 1: not valid YAML (did not find expected node content); fix it or move the file "
                 "away"),
    ("10MB", f"config-eks is {TEN_MB} bytes, more than the 1048576 allowed"),
    ("directory", "config-eks is not a regular file"),
])
def test_unusable_kubeconfig_login_writes_tokens_leaves_file_and_says_why(cluster, users, alice, syslog, kind, why):
    user, cfg, svc = alice
    kc = kubeconfig_of(users, user)
    if kind == "not-yaml":
        write_as(users, user, kc, "clusters: [\n")
    elif kind == "10MB":
        line = b"# a kubeconfig grown out of hand\n"
        write_as(users, user, kc, (line * (TEN_MB // len(line) + 1))[:TEN_MB])
    else:
        write_as(users, user, kc / "inside", "the user's own\n")
    before = {p.name: p.read_bytes() for p in kc.iterdir()} if kind == "directory" else kc.read_bytes()
    syslog.clear()
    d, took = login(svc, user)
    print(f"\nlogin over a config-eks that is {kind} took {took:.2f}s")
    assert f"~/.kube/config-eks was left as it was: {why}" in infos(d), d.lines
    assert f"user {user}: ~/.kube/config-eks: {why}" in syslog.text()
    assert token_path(users, user).exists()  # the token files are written all the same
    assert cluster.whoami(user_token(users, user)) == WHO
    after = {p.name: p.read_bytes() for p in kc.iterdir()} if kind == "directory" else kc.read_bytes()
    assert after == before
    assert temp_files(kc.parent) == [] and not kc.with_name("config-eks.lock").exists()
    token = user_token(users, user)
    assert d.close() == ["close 0 Success"]
    assert not token_path(users, user).exists() and home_holds(users.home(user), [token]) == []


# ---- kubeconfig.remove_on_logout: true ---------------------------------------------------------------------------


@pytest.fixture
def removing(workdir, users, pam_service):
    user = users.make()
    cfg = workdir.alice_config(user, extra="kubeconfig:\n  remove_on_logout: true\n")
    write_as(users, user, users.home(user) / ".kube" / "config", USER_CONFIG)
    return user, cfg, pam_service(f"config={cfg}")


def test_remove_on_logout_removes_the_file_holding_only_ours(cluster, users, removing):
    user, cfg, svc = removing
    kc = kubeconfig_of(users, user)
    d, _ = login(svc, user)
    assert marked_names(load(kc)) == ["test"]
    assert d.close() == ["close 0 Success"]
    assert not kc.exists()
    assert (kc.parent / "config").read_text() == USER_CONFIG
    assert sorted(os.listdir(kc.parent)) == ["config"]
    assert_no_token_left(users, user)


def test_remove_on_logout_removes_only_ours_at_the_last_logout(cluster, users, removing):
    user, cfg, svc = removing
    kc = kubeconfig_of(users, user)
    first, _ = login(svc, user)
    second, _ = login(svc, user)
    # The user's own entries, written by kubectl into config-eks (first in KUBECONFIG).
    for args in (["set-cluster", "mine", "--server=https://mine.example:6443"],
                 ["set-context", "mine", "--cluster=mine", "--user=me", "--namespace=mine-ns"],
                 ["use-context", "mine"]):
        assert kubectl_user(user, "config", *args).returncode == 0, args
    with_ours = kc.read_bytes()
    assert first.close() == ["close 0 Success"]
    assert kc.read_bytes() == with_ours  # not the last logout: nothing removed
    assert whoami(user, context="test") == WHO
    assert second.close() == ["close 0 Success"]
    doc = load(kc)
    assert marked_names(doc) == []
    assert [e["name"] for e in doc["clusters"]] == ["mine"] and [e["name"] for e in doc["contexts"]] == ["mine"]
    assert entry(doc, "contexts", "mine")["context"] == {"cluster": "mine", "user": "me", "namespace": "mine-ns"}
    assert doc["current-context"] == "mine"
    assert kubectl_reads(user, kc)["current-context"] == "mine"
    assert (kc.parent / "config").read_text() == USER_CONFIG
    assert_no_token_left(users, user)


def test_remove_on_logout_under_kubectls_lock_is_finished_by_gc(cluster, users, removing, syslog):
    """kubectl holds its lock at the last logout: our entries stay, the log says
    why; the next gc, with the lock gone, removes them (and the file)."""
    user, cfg, svc = removing
    kc = kubeconfig_of(users, user)
    d, _ = login(svc, user)
    written = kc.read_bytes()
    lock = kc.with_name("config-eks.lock")
    run(["runuser", "-u", user, "--", "python3", "-c",
         f"import os; os.open({str(lock)!r}, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)"])
    syslog.clear()
    assert d.close() == ["close 0 Success"]
    assert kc.read_bytes() == written and lock.exists()
    assert f"user {user}: ~/.kube/config-eks: ~/.kube/config-eks.lock exists" in syslog.text()
    lock.unlink()
    assert helper("gc", "--config", cfg).returncode == 0
    assert not kc.exists()
    assert_no_token_left(users, user)


def test_check_warns_that_remove_on_logout_breaks_shared_homes(workdir, users, removing):
    user, cfg, _ = removing
    warning = ("kubeconfig.remove_on_logout is true: with homes shared between bastions, a logout here removes the "
               "contexts a session on another bastion uses")
    p = helper("check", "--config", cfg)
    assert f"warning: {cfg}: {warning}" in p.stderr, p.stdout + p.stderr
    default = workdir.alice_config(user)
    p = helper("check", "--config", default)
    assert "remove_on_logout" not in p.stdout + p.stderr
