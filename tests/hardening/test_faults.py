"""Network and TLS faults, through a fault-injecting HTTPS server on loopback.
Each case: a clear error, the previous kubeconfig intact, no temp file, within
the deadline, and (run with --debug) no secret in stdout, stderr or syslog.
For TLS failures the server must have received no request at all: the bearer
token is never sent."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import helper, kubeconfig_of, run, user_token
from certs import make_ca, sign_cert
from faultserver import FaultServer

TLS_CASES = {
    "system-ca": "a certificate from a CA the system trust store holds but the config does not",
    "wrong-ca": "a certificate from another CA",
    "expired": "an expired certificate from the configured CA",
    "wrong-host": "a certificate for another host name",
}
HTTP_CASES = {
    "silent": ("a server that accepts and never answers", "no answer from"),
    "trickle": ("a server that trickles a byte a second", "no answer from"),
    "redirect": ("3xx to another host (not followed)", "failed with HTTP 307"),
    "401": ("401", "does not accept the helper's credentials (401)"),
    "403": ("403", "may not create serviceaccounts/token for team-a/alice (403); run pam-kubeconfig rbac"),
    "404": ("404", "serviceaccounts/token team-a/alice not found (404)"),
    "409": ("409", "failed with HTTP 409"),
    "500": ("500", "failed with HTTP 500"),
    "html": ("an HTML answer", "with a body that is not JSON"),
    "truncated": ("truncated JSON", "with a body that is not JSON"),
    "huge": ("a 10 MB body", "larger than 1048576 bytes"),
    "no-token": ("a TokenRequest answer without a token", "holds no token"),
    "past-expiry": ("a TokenRequest answer with an expiry in the past", "expiry in the past"),
}


@pytest.fixture(scope="module")
def certs(cluster):
    d = Path(tempfile.mkdtemp(prefix="kc-faults."))
    ca_cert, ca_key = cluster.ca_file, str(Path(cluster.ca_file).with_name("ca.key"))
    other_ca = make_ca(d, "other")
    system_ca = make_ca(d, "system")
    out = {
        "good": sign_cert(d, "good", ca_cert, ca_key),
        "wrong-ca": sign_cert(d, "wrongca", *other_ca),
        "system-ca": sign_cert(d, "systemca", *system_ca),
        "expired": sign_cert(d, "expired", ca_cert, ca_key, when="-10d"),
        "wrong-host": sign_cert(d, "wronghost", ca_cert, ca_key, san="DNS:wrong.example"),
    }
    # Trusted by the system for the length of these tests, then removed.
    anchor = Path(f"/usr/local/share/ca-certificates/pam-kubeconfig-test-{os.getpid()}.crt")
    shutil.copy(system_ca[0], anchor)
    run(["update-ca-certificates"])
    yield out
    anchor.unlink()
    run(["update-ca-certificates", "--fresh"])
    shutil.rmtree(d, ignore_errors=True)


def setup_user(cluster, workdir, users):
    """A user who logged in and out once: a kubeconfig of theirs exists, and the
    token they had is known (it must never be sent to a faulty server either)."""
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    user = users.make()
    good = workdir.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: team-a/alice\n")
    p = helper("open", "--user", user, "--session", "good", "--config", good)
    assert p.returncode == 0, p.stderr
    token = user_token(users, user)
    p = helper("close", "--user", user, "--session", "good", "--config", good)
    assert p.returncode == 0, p.stderr
    return user, good, token


def fault_config(workdir, user, server):
    path = workdir.path / "fault.yaml"
    path.write_text(f"""network:
  request_timeout: 2s
  connect_timeout: 1s
clusters:
{workdir.cluster_entry("test", server=server)}mappings:
  - user: {user}
    cluster: test
    serviceaccount: team-a/alice
""")
    os.chmod(path, 0o644)
    return path


def run_fault(cluster, workdir, users, syslog, server):
    user, _, old_token = setup_user(cluster, workdir, users)
    kc = kubeconfig_of(users, user)
    before = kc.read_bytes()
    cfg = fault_config(workdir, user, server.url)
    syslog.clear()
    start = time.monotonic()
    p = helper("open", "--user", user, "--session", "fault", "--config", cfg, "--debug")
    took = time.monotonic() - start
    assert p.returncode == 1, p.stdout + p.stderr
    assert "MESSAGE=cluster test is unavailable" in p.stdout
    assert kc.read_bytes() == before
    assert [n for n in os.listdir(kc.parent) if n.startswith(".")] == []
    assert took < 3.5, took
    log = syslog.text()
    for secret in (cluster.minter_token(), old_token):
        assert secret not in p.stdout and secret not in p.stderr and secret not in log
    return p


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_tls_failures_never_send_the_token(cluster, workdir, users, syslog, certs, case, request):
    request.node.add_marker(pytest.mark.security(f"TLS: {TLS_CASES[case]}"))
    server = FaultServer(*certs[case], mode="ok")
    try:
        if case == "system-ca":
            # The premise: the system's store does trust this server.
            ok = subprocess.run(["curl", "-sS", "-o", "/dev/null", f"{server.url}/version"], capture_output=True)
            assert ok.returncode == 0, ok.stderr
            server.requests.clear()
        p = run_fault(cluster, workdir, users, syslog, server)
        assert "TLS with" in p.stderr and "failed" in p.stderr, p.stderr
        assert server.requests == []  # not a single request: the bearer token never left
    finally:
        server.close()


def test_insecure_skip_tls_verify_absent_means_verification_on(workdir):
    text = workdir.write_config("  - user: a\n    cluster: test\n    serviceaccount: team-a/alice\n").read_text()
    assert "insecure" not in text  # the configs of every TLS case above


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_faults_give_a_clear_error_in_time(cluster, workdir, users, syslog, certs, case, request):
    what, message = HTTP_CASES[case]
    request.node.add_marker(pytest.mark.security(f"network: {what}"))
    server = FaultServer(*certs["good"], mode=case)
    try:
        p = run_fault(cluster, workdir, users, syslog, server)
        assert message in p.stderr, p.stderr
        if case == "redirect":
            assert not any("other.example" in path for _, path, _ in server.requests)
    finally:
        server.close()
