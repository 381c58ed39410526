"""The parsed-config cache: a large unchanged config is not parsed again at each
login, but an edit takes effect at once, a broken edit is refused (never served
from the cache), a damaged cache is ignored, and credential files are checked at
every load."""
import hashlib
import os
import re
from pathlib import Path

from conftest import HELPER, helper, kubeconfig_of, kubectl_as, run, security

CACHE = Path("/var/cache/pam_kubeconfig")


def cache_file(cfg):
    """The cache store's entry for this config: kind "config", its header naming
    the path (the entry's name hashes the file's identity and the build). A path
    that does not exist when there is none."""
    want = str(cfg).encode()
    for p in CACHE.glob("config-*"):
        if p.name.endswith(".lock"):
            continue
        head = p.read_bytes()[:8 + 4 + 200 + 4 + len(want)]
        if head[:8] != b"KCCACHE4":
            continue
        n = int.from_bytes(head[8:12], "little")
        at = 12 + n
        if int.from_bytes(head[at:at + 4], "little") == len(want) and head[at + 4:at + 4 + len(want)] == want:
            return p
    return CACHE / f"config-none-for-{hashlib.sha256(want).hexdigest()[:16]}"


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


# ---- the cache is keyed by the build --------------------------------------------------

def other_build(tmp_dir):
    """A copy of the helper with another GNU build id, as an upgrade would be:
    same path layout, different code."""
    out = run(["readelf", "-n", HELPER]).stdout
    build_id = bytes.fromhex(re.search(r"Build ID: ([0-9a-f]+)", out).group(1))
    data = HELPER.read_bytes()
    assert data.count(build_id) == 1
    changed = build_id[:-1] + bytes([build_id[-1] ^ 0xff])
    copy = tmp_dir / "pam-kubeconfig"
    copy.write_bytes(data.replace(build_id, changed))
    os.chmod(copy, 0o755)
    return copy


@security("a parsed config cached by one build is never used by another: an upgrade's parser or "
          "validation fix applies to an unchanged config at once")
def test_another_build_never_reads_the_cache(workdir, users):
    user = users.make()
    cfg = workdir.write_config(mapping(user, "team-a/alice"))
    old = other_build(workdir.path)
    # The "old build" parses and caches the config...
    p = run([old, "explain", "--config", cfg, user], check=False)
    assert "-> ServiceAccount team-a/alice" in p.stdout, p.stdout + p.stderr
    entry = cache_file(cfg)
    # ...and, as an old parser may, got it wrong: its entry says another ServiceAccount.
    data = entry.read_bytes()
    assert data.count(b"\x05\x00\x00\x00alice") == 1
    entry.write_bytes(data.replace(b"\x05\x00\x00\x00alice", b"\x05\x00\x00\x00mallo"))
    assert "-> ServiceAccount team-a/mallo" in run([old, "explain", "--config", cfg, user]).stdout
    # The current build parses the config itself.
    p = helper("explain", "--config", cfg, user)
    assert "-> ServiceAccount team-a/alice" in p.stdout, p.stdout + p.stderr
    # Its own entry holds what it parsed; the other build's is gone (pruned).
    assert b"mallo" not in cache_file(cfg).read_bytes()
    assert not entry.exists()


def test_stale_entries_are_pruned(workdir, users):
    """A parse (a cache miss) prunes the entries of configs that no longer exist
    and of other builds; this build's entries for existing configs stay."""
    user = users.make()
    old = other_build(workdir.path)
    kept, gone, third, rebuilt = (workdir.path / f"{n}.yaml" for n in ("kept", "gone", "third", "rebuilt"))
    text = workdir.write_config(mapping(user, "team-a/alice")).read_text()
    for c in (kept, gone, third, rebuilt):
        c.write_text(text)
        os.chmod(c, 0o644)
    assert helper("check", "--config", kept).returncode == 0
    assert helper("check", "--config", gone).returncode == 0
    assert cache_file(kept).exists() and cache_file(gone).exists()
    gone.unlink()
    assert helper("check", "--config", third).returncode == 0
    assert cache_file(kept).exists() and cache_file(third).exists()
    assert not cache_file(gone).exists()
    # Another build's parse prunes this build's entries, and the other way round.
    assert run([old, "check", "--config", rebuilt], check=False).returncode == 0
    assert cache_file(rebuilt).exists()
    assert not cache_file(kept).exists() and not cache_file(third).exists()
    assert helper("check", "--config", kept).returncode == 0
    assert cache_file(kept).exists() and not cache_file(rebuilt).exists()
