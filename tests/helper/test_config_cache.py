"""The parsed-config cache: a large unchanged config is not parsed again at each
login, but an edit takes effect at once, a broken edit is refused (never served
from the cache), a damaged cache is ignored, and credential files are checked at
every load."""
import hashlib
import os
from pathlib import Path

from conftest import helper, kubeconfig_of, kubectl_as, security

CACHE = Path("/var/cache/pam_kubeconfig")


def cache_file(cfg):
    return CACHE / f"config-{hashlib.sha256(str(cfg).encode()).hexdigest()[:24]}.cache"


def mapping(user, sa):
    return f"  - user: {user}\n    cluster: test\n    serviceaccount: {sa}\n"


def test_unchanged_config_is_read_from_the_cache(cluster, workdir, users):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    many = "".join(mapping(f"other{i}", "team-a/alice") for i in range(2000))
    cfg = workdir.write_config(many + mapping(user, "team-a/alice"))
    assert helper("check", "--config", cfg).returncode == 0
    assert cache_file(cfg).exists()
    before = cache_file(cfg).stat().st_mtime_ns
    p = helper("explain", "--config", cfg, user)
    assert "-> ServiceAccount team-a/alice" in p.stdout
    assert cache_file(cfg).stat().st_mtime_ns == before  # read, not rewritten


@security("an edited config takes effect at the next login, never shadowed by the cache")
def test_an_edit_takes_effect_at_once(cluster, workdir, users):
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    cluster.ensure_sa("bastion-access", "admin", clusterrole="view")
    user = users.make()
    cfg = workdir.write_config(mapping(user, "team-a/alice"))
    assert helper("open", "--user", user, "--session", "c1", "--config", cfg).returncode == 0
    # Any edit changes the file's identity (size, mtime, ctime): the cache is not used.
    text = cfg.read_text().replace("team-a/alice", "bastion-access/admin")
    cfg.write_text(text)
    p = helper("open", "--user", user, "--session", "c2", "--config", cfg)
    assert p.returncode == 0, p.stderr
    who = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o",
                     "jsonpath={.status.userInfo.username}")
    assert who.stdout == "system:serviceaccount:bastion-access:admin"


def test_a_broken_edit_is_refused_not_served_from_the_cache(workdir, users):
    user = users.make()
    cfg = workdir.write_config(mapping(user, "team-a/alice"))
    assert helper("check", "--config", cfg).returncode == 0
    cfg.write_text(cfg.read_text() + "bogus: 1\n")
    p = helper("check", "--config", cfg)
    assert p.returncode == 2 and "unknown key 'bogus'" in p.stderr


def test_a_damaged_cache_is_ignored(workdir, users):
    user = users.make()
    cfg = workdir.write_config(mapping(user, "team-a/alice"))
    assert helper("check", "--config", cfg).returncode == 0
    data = bytearray(cache_file(cfg).read_bytes())
    data[-5:] = b"\xff\xff\xff\xff\xff"
    cache_file(cfg).write_bytes(bytes(data[:len(data) // 2]) + b"\xff" * 9)
    p = helper("explain", "--config", cfg, user)
    assert p.returncode == 0 and "-> ServiceAccount team-a/alice" in p.stdout


@security("credential files are checked at every load, cached config or not")
def test_credential_files_are_checked_on_a_cache_hit(workdir, users):
    user = users.make()
    cfg = workdir.write_config(mapping(user, "team-a/alice"))
    assert helper("check", "--config", cfg).returncode == 0
    os.chmod(workdir.token, 0o644)
    p = helper("check", "--config", cfg)
    assert p.returncode == 2 and "must not be readable or writable by group or others" in p.stderr
