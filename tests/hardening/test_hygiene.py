"""Process hygiene (CVE-2010-3853, pam-u2f CVE-2019-12210) and hostile input:
the helper gets only a fixed environment and fds 0-2 whatever its caller holds,
survives hostile rlimits, writes nothing when a privilege drop fails, and
refuses bad arguments and config bombs quickly and clearly."""
import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, DRIVER, HELPER, driver_once, helper, run, security


def mapped(cluster, workdir, user, server=None, extra=""):
    return workdir.alice_config(user, server=server, extra=extra)


def find_helper(installed, timeout=5):
    """The pid of our helper while it runs an open."""
    target = str(installed / "pam-kubeconfig")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv[1:2] == [b"open"] and os.readlink(f"/proc/{pid}/exe") == target:
                    return int(pid)
            except (OSError, IndexError):
                pass
        time.sleep(0.002)
    raise AssertionError("the helper was not seen running")


@security("a caller environment with LD_PRELOAD, HTTPS_PROXY and friends, and fds 3..1023 open")
def test_helper_gets_only_a_fixed_environment_and_fds(cluster, workdir, users, pam_service, proxy, installed,
                                                      tmp_path):
    user = users.make()
    cfg = mapped(cluster, workdir, user, server=proxy.server, extra="network:\n  request_timeout: 3s\n")
    proxy.set("blackhole")  # keeps the helper in its network call long enough to be looked at
    svc = pam_service(f"config={cfg}")
    marker = tmp_path / "caller-fd"
    marker.write_text("caller's file")
    fds = []
    for _ in range(3, 1024):
        fd = os.open(marker, os.O_RDONLY)
        if fd >= 1024:
            os.close(fd)
            break
        fds.append(fd)
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/lib/x86_64-linux-gnu/libm.so.6", "HTTPS_PROXY": "http://evil:1",
           "http_proxy": "http://evil:1", "ALL_PROXY": "http://evil:1", "LD_LIBRARY_PATH": "/tmp",
           "KUBECONFIG": "/tmp/evil", "SSL_CERT_FILE": "/tmp/evil.pem", "CURL_CA_BUNDLE": "/tmp/evil.pem",
           "OPENSSL_CONF": "/tmp/evil.cnf", "GCONV_PATH": "/tmp", "MALLOC_CHECK_": "3"}
    p = subprocess.Popen([str(DRIVER), svc, user], env=env, pass_fds=fds, stdout=subprocess.PIPE, text=True)
    try:
        pid = find_helper(installed)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert sorted(e for e in environ if e) == [b"LANG=C", b"PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        inherited = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                inherited[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                pass  # closed while we looked (a socket): not one the caller gave it
        assert all(target != str(marker) for target in inherited.values()), inherited
        assert {0, 1, 2} <= set(inherited)
        assert inherited[0] == "/dev/null"
    finally:
        p.communicate(timeout=30)
        for fd in fds:
            os.close(fd)


def has_cap_sys_resource():
    eff = int(next(l for l in Path("/proc/self/status").read_text().splitlines()
                   if l.startswith("CapEff:")).split()[1], 16)
    return bool(eff & (1 << 24))


@security("hostile soft rlimits: few fds, no file size")
def test_hostile_soft_rlimits(cluster, workdir, users, pam_service):
    user = users.make()
    cfg = mapped(cluster, workdir, user)
    svc = pam_service(f"config={cfg}", control="required", extra_after="")

    def limits():
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_NOFILE, (12, 4096))

    p = subprocess.run([str(DRIVER), "--hold", svc, user], preexec_fn=limits, input="close\n",
                       capture_output=True, text=True, timeout=60)
    assert "open 0 Success" in p.stdout, p.stdout + p.stderr
    assert "close 0 Success" in p.stdout


@security("hostile hard rlimits: no file size at all")
def test_hostile_hard_rlimits(cluster, workdir, users, pam_service, syslog):
    """Root lifts a hard limit of 0 where it holds CAP_SYS_RESOURCE; where it does
    not (some containers), the login fails cleanly, says why, and writes nothing."""
    user = users.make()
    cfg = mapped(cluster, workdir, user)
    svc = pam_service(f"config={cfg}", control="required", extra_after="")
    syslog.clear()

    def limits():
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))

    p = subprocess.run([str(DRIVER), "--hold", svc, user], preexec_fn=limits, input="close\n",
                       capture_output=True, text=True, timeout=60)
    kube = Path(f"/home/{user}/.kube")
    if has_cap_sys_resource():
        assert "open 0 Success" in p.stdout, p.stdout
    else:
        assert "open 14 " in p.stdout, p.stdout
        assert "File too large" in syslog.text()
        assert not kube.exists() or not [n for n in os.listdir(kube) if n.startswith(".config-eks.")]
        assert not (kube / "config-eks").exists()


@pytest.mark.parametrize("step", ["setgroups", "setresgid", "setresuid"])
@security("failures injected into setgroups/setresgid/setresuid")
def test_failed_privilege_drop_writes_nothing(cluster, workdir, users, step):
    user = users.make()
    cfg = mapped(cluster, workdir, user)
    env = {**os.environ, "LD_PRELOAD": str(BUILD / "tests" / "failsyscall.so"), "KC_FAIL": step}
    mark = cluster.audit_mark()
    p = run([HELPER, "open", "--user", user, "--session", "drop1", "--config", cfg], check=False, env=env)
    assert p.returncode == 1
    assert "cannot drop privileges to the user; nothing written" in p.stderr
    assert not (Path(f"/home/{user}") / ".kube").exists()
    # It stopped before any secret was loaded or any request sent.
    assert not [e for e in cluster.audit_events(mark) if e["user"]["username"] == "pam-kubeconfig"]


@security("the helper run with argc 0 or wrong arguments")
def test_argc_zero_and_wrong_arguments():
    p = run([BUILD / "tests" / "kc-argv0", HELPER], check=False)
    assert p.returncode == 2 and "no command given" in p.stderr  # Linux >= 5.18 turns argv {} into {""}
    for args in (["open"], ["open", "--user", "x"], ["frobnicate"], ["open", "--user", "x", "--session", "s",
                 "--pid", "-4"], ["open", "--user", "x", "--session", "../../etc"], ["close", "--bogus"]):
        p = helper(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stdout == ""


def _check(path):
    start = time.monotonic()
    p = helper("check", "--config", path)
    return p, time.monotonic() - start


@pytest.mark.parametrize("name,text,message", [
    ("billion-laughs", 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: [*c,*c]\n', "YAML aliases"),
    ("deep-nesting", "a: " + "[" * 10000 + "]" * 10000 + "\n", "nested more than 32 levels"),
    ("nul-byte", "min_uid: 1000\x00\nclusters: []\n", "YAML syntax error"),
    ("invalid-utf8", "min_uid: 1000\nhost_id: \"\xff\xfe\"\n", "YAML syntax error"),
], ids=["billion-laughs", "deep-nesting", "nul-byte", "invalid-utf8"])
@security("config input: YAML bombs, deep nesting, NUL bytes, invalid UTF-8")
def test_config_bombs_are_refused(tmp_path, name, text, message):
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("latin-1") if name == "invalid-utf8" else text.encode())
    os.chmod(path, 0o644)
    p, took = _check(path)
    assert p.returncode == 2
    assert p.stderr.startswith(f"{path}:") and message in p.stderr, p.stderr
    assert took < 2


@security("a 100 MB config and a 100 MB credential file")
def test_huge_files_are_refused_before_parsing(tmp_path, workdir):
    big = tmp_path / "config.yaml"
    with open(big, "wb") as f:
        f.truncate(100 << 20)
    os.chmod(big, 0o644)
    p, took = _check(big)
    assert p.returncode == 2 and "more than the 4194304 allowed" in p.stderr
    assert took < 2
    token = tmp_path / "big.token"
    with open(token, "wb") as f:
        f.truncate(100 << 20)
    os.chmod(token, 0o600)
    cfg = workdir.write_config("  - user: a\n    cluster: test\n    serviceaccount: team-a/alice\n",
                               clusters=[workdir.cluster_entry("test", token=token)])
    p, took = _check(cfg)
    assert p.returncode == 2 and "more than the 65536 allowed" in p.stderr
    assert took < 2


@pytest.mark.parametrize("helper_body,why", [
    ("#!/bin/sh\nkill -SEGV $$\n", "the helper crashes"),
    ("#!/bin/sh\nexit 3\n", "the helper fails with an unknown status"),
    ("#!/bin/sh\necho KUBECONFIG=/etc/shadow\nexit 1\n", "the helper fails after printing KUBECONFIG"),
    (None, "the helper is missing"),
], ids=["crashes", "unknown-status", "fails-after-printing-KUBECONFIG", "missing"])
@security("an internal error is never reported as PAM_IGNORE or success (pam-u2f CVE-2025-23013)")
def test_internal_errors_are_session_errors(installed, pam_service, users, helper_body, why):
    user = users.make()
    fake = installed / "broken-helper"
    fake.unlink(missing_ok=True)
    if helper_body:
        fake.write_text(helper_body)
        os.chmod(fake, 0o755)
    svc = pam_service(f"helper={fake}", control="required", extra_after="")
    rc, lines, _ = driver_once(svc, user)
    assert rc == 14, (why, lines)  # PAM_SESSION_ERR
    assert not any(l.startswith("ENV KUBECONFIG") for l in lines)


@security("a helper path that a non-root user could replace is refused")
def test_unsafe_helper_path_is_refused(pam_service, users, tmp_path):
    user = users.make()
    unsafe = tmp_path / "pam-kubeconfig"  # /tmp is world-writable
    unsafe.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(unsafe, 0o755)
    svc = pam_service(f"helper={unsafe}", control="required", extra_after="")
    rc, lines, _ = driver_once(svc, user)
    assert rc == 14, lines
