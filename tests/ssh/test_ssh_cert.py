"""Issue 25 over a real sshd: access bounded by the SSH certificate a login
came with. A throwaway SSH CA (`ssh-keygen -s`) that sshd trusts
(TrustedUserCAKeys, ExposeAuthInfo) and the config names
(ssh_certificates.trusted_ca_keys); a rule with `ssh_certificate: { principal:
k8s-admin }` elevates to bastion-access/admin, the rule after it is the default
(team-a/alice). Every verdict is the API server's: who the token of the user's
own ssh session authenticates as (kubectl in that session), who the token file
holds, whether an old token is refused; a watch held by a process of the user's
shows the cut. A pam_exec probe just before the module records the
SSH_AUTH_INFO_0 the module read, so a forgery is known to have reached it."""
import datetime
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from clients import jwt_claims, wait_for
from conftest import (HELPER, STATE_DIR, Background, Driver, current_token, end_process, helper, kubeconfig_of,
                      kubectl_as, run, run_bounded, security, unique_host_id, user_runnable)
from test_ssh import SSHD, Sshd, wait_closed

ADMIN = "system:serviceaccount:bastion-access:admin"
DEFAULT = "system:serviceaccount:team-a:alice"
SRE = "system:serviceaccount:bastion-users:kct-sre"
ELEVATED_RULE = ('  - user: "*"\n    cluster: test\n    serviceaccount: bastion-access/admin\n'
                 '    ssh_certificate:\n      principal: k8s-admin\n')
SRE_RULE = ('  - user: "*"\n    cluster: test\n    serviceaccount: bastion-users/kct-sre\n'
            '    ssh_certificate:\n      principal: sre\n')
DEFAULT_RULE = '  - user: "*"\n    cluster: test\n    serviceaccount: team-a/alice\n'
# The API server's floor on a token's lifetime: a certificate that ends sooner still gets this much.
FLOOR = 600
WATCHERS = user_runnable(Path(__file__).resolve().parents[1] / "lifecycle" / "watchers.py")
# In a session: the name its kubeconfig authenticates as.
WHOAMI = "kubectl auth whoami -o jsonpath={.status.userInfo.username}; echo"


# ---- the CA, sshd, logins -------------------------------------------------------------------------


class SshCa:
    """An OpenSSH certificate authority of the test's: an ed25519 key pair that
    signs user keys with `ssh-keygen -s`."""

    def __init__(self, name="kct-ca"):
        self.dir = Path(tempfile.mkdtemp(prefix="kc-sshca."))
        self.key = self.dir / "ca"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", self.key])
        self.pub_line = (self.dir / "ca.pub").read_text()

    def user_key(self):
        """A fresh key pair; the path of its private key."""
        key = self.dir / f"user-{secrets.token_hex(4)}"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        return key

    def sign(self, key, identity, principals, validity):
        """A certificate for key (ssh-keygen -V syntax for validity), kept away
        from the key so that ssh offers it only when told to."""
        run(["ssh-keygen", "-q", "-s", self.key, "-I", identity, "-n", ",".join(principals), "-V", validity,
             f"{key}.pub"])
        cert = self.dir / f"cert-{secrets.token_hex(4)}.pub"
        Path(f"{key}-cert.pub").rename(cert)
        return cert

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def valid_before(cert):
    """The certificate's valid-before, as ssh-keygen reads it (epoch seconds)."""
    out = run(["ssh-keygen", "-L", "-f", cert], env={**os.environ, "TZ": "UTC"}).stdout
    m = re.search(r"Valid: from \S+ to (\S+)", out)
    assert m, out
    return datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()


def auth_info(cert):
    """The line sshd writes into SSH_AUTH_INFO_0 for a login with that certificate."""
    kind, blob = Path(cert).read_text().split()[:2]
    return f"publickey {kind} {blob}"


def pam_env_line(value):
    """pam_env's config-file syntax (pam_env.conf, ~/.pam_environment) setting SSH_AUTH_INFO_0."""
    escaped = value.replace("\\", "\\\\").replace("$", "\\$").replace("@", "\\@")
    return f'SSH_AUTH_INFO_0 DEFAULT="{escaped}"\n'


class CertSshd(Sshd):
    """test_ssh's sshd, trusting the test's CA (TrustedUserCAKeys), telling PAM
    how a user authenticated (ExposeAuthInfo), reading a user's own
    ~/.ssh/authorized_keys after the root-managed keys, with extra sshd_config
    lines and the session stack a test asks for. `session` may name {probe}
    (pam_exec recording the SSH_AUTH_INFO_0 it sees) and {module} (ours)."""

    DEFAULT_SESSION = "session required pam_permit.so\n{probe}{module}"

    def __init__(self, installed, config, trusted_ca, extra="", session=None):
        self.service = f"kc-ssh-{secrets.token_hex(4)}"
        self.dir = Path(tempfile.mkdtemp(prefix="kc-sshd.", dir="/usr/local/lib"))
        os.chmod(self.dir, 0o755)
        (self.dir / "keys").mkdir(mode=0o755)
        (self.dir / "seen").mkdir(mode=0o755)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "host_key"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.dir / "client_key"])
        probe = self.dir / "probe"
        probe.write_text(f'#!/bin/sh\nprintf %s "$SSH_AUTH_INFO_0" > "{self.dir / "seen"}/$PAM_USER"\n')
        os.chmod(probe, 0o755)
        self.module_line = (f"session optional {installed / 'pam_kubeconfig.so'} helper={installed / 'pam-kubeconfig'} "
                            f"config={config}\n")
        self.pam = Path("/etc/pam.d") / self.service
        self.pam.write_text("auth required pam_permit.so\naccount required pam_permit.so\n"
                            + (session or self.DEFAULT_SESSION).format(
                                probe=f"session optional pam_exec.so quiet {probe}\n", module=self.module_line))
        binary = self.dir / self.service
        shutil.copy2(SSHD, binary)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.dir / 'host_key'}
PidFile {self.dir / 'sshd.pid'}
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {self.dir / 'keys'}/%u .ssh/authorized_keys
TrustedUserCAKeys {trusted_ca}
ExposeAuthInfo yes
PermitRootLogin no
MaxStartups 400:30:600
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
{extra}""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([str(binary), "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                     stderr=open(self.dir / "sshd.log", "w"))
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("sshd did not start: " + (self.dir / "sshd.log").read_text())

    def log(self):
        return (self.dir / "sshd.log").read_text()[-3000:]

    def argv(self, user, key=None, cert=None):
        """ssh as user offering exactly key (default: the tier's client key) and cert."""
        cmd = ["ssh", "-i", str(key or self.dir / "client_key"), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
               "-p", str(self.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if cert:
            cmd += ["-o", f"CertificateFile={cert}"]
        return cmd + [f"{user}@127.0.0.1"]

    def once(self, user, command, key=None, cert=None):
        """One login running command; the name its kubeconfig authenticates as when command is WHOAMI."""
        return subprocess.run(self.argv(user, key, cert) + [command], capture_output=True, text=True, timeout=120)

    def seen(self, user):
        """The SSH_AUTH_INFO_0 the module of user's last login read (the probe just before it)."""
        f = self.dir / "seen" / user
        return f.read_text() if f.exists() else None


def whoami_of(p):
    """The name a one-shot login's WHOAMI printed."""
    assert p.returncode == 0, f"the login failed ({p.returncode}): {p.stdout}{p.stderr}"
    return p.stdout.strip().splitlines()[-1]


class Login(Background):
    """An ssh login held open: a shell in it runs each command the test sends,
    in the session's own environment (KUBECONFIG from PAM), and answers
    "=== RC" after it."""

    SHELL = 'echo "=== ready"; while IFS= read -r c; do eval "$c" 2>&1; echo "=== $?"; done'

    def __init__(self, sshd, user, key=None, cert=None):
        self.user, self.sshd = user, sshd
        super().__init__([*sshd.argv(user, key, cert), self.SHELL], stdin=subprocess.PIPE)
        if not wait_for(lambda: self.saw("=== ready") or self.p.poll() is not None, 60, step=0.05) \
                or not self.saw("=== ready"):
            end_process(self.p)
            raise AssertionError(f"the ssh login gave no shell:\n{self.text()}\nsshd: {sshd.log()}")

    def run(self, command, timeout=60):
        """(exit status, output) of command in the session."""
        n = len(self.timed_lines)
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()

        def answer():
            out = self.lines[n:]
            for i, line in enumerate(out):
                if line.startswith("=== "):
                    return int(line[4:]), "\n".join(out[:i])
            return None

        got = wait_for(answer, timeout, step=0.05)
        assert got, f"the session did not answer {command!r} within {timeout}s:\n{self.text()[-2000:]}"
        return got

    def whoami(self):
        rc, out = self.run(WHOAMI)
        return out.strip().splitlines()[-1] if rc == 0 and out.strip() else f"kubectl failed ({rc}): {out}"

    def alive(self):
        return self.p.poll() is None

    def logout(self):
        """Ends the shell as a user would (end of input); the client exits with the session."""
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                end_process(self.p)
        self.thread.join(timeout=5)


class UserWatch(Background):
    """tests/lifecycle/watchers.py as the user: one watch on ConfigMaps of
    namespace, with a token the process read once (a client that cached it)."""

    def __init__(self, workdir, users, user, token, namespace):
        pw = pwd.getpwnam(user)
        copy = users.home(user) / f".kct-token-{secrets.token_hex(3)}"
        copy.write_text(token)
        os.chown(copy, pw.pw_uid, pw.pw_gid)
        os.chmod(copy, 0o400)
        super().__init__(["python3", WATCHERS, "--server", workdir.cluster.server, "--ca", workdir.ca,
                          "--token-file", copy, "--namespace", namespace, "--count", "1"],
                         user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/", start_new_session=True)

    def _last(self, word):
        counts = [int(l.split()[1]) for l in self.lines if l.startswith(word + " ")]
        return counts[-1] if counts else 0

    def ready(self):
        return self._last("ready")

    def ended(self):
        return self._last("ended")


def authorize_for(users, user, line):
    """A line the user puts in their own ~/.ssh/authorized_keys."""
    pw = pwd.getpwnam(user)
    d = users.home(user) / ".ssh"
    d.mkdir(mode=0o700, exist_ok=True)
    f = d / "authorized_keys"
    f.write_text(line.rstrip("\n") + "\n")
    for p in (d, f):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(f, 0o600)


def refresh(cfg):
    """One run of the refresh timer's command."""
    r = run_bounded(["refresh", "--config", cfg], 20000)
    assert r.returncode == 0 and not r.killed, f"refresh: {r!r}\n{r.stdout}"
    return r


def sleep_past(when):
    """Waits for an instant of the wall clock: a certificate's end is one."""
    time.sleep(max(0.0, when - time.time()) + 0.5)


def explain(cfg, user, cert):
    return helper("explain", user, "--ssh-cert", cert, "--config", cfg).stdout


def check_as_sshd(stack, cfg):
    """What `pam-kubeconfig check` says (stdout and stderr). It judges
    /etc/pam.d/sshd alone: it runs here in a private mount namespace whose
    /etc/pam.d holds `stack` as sshd's."""
    d = Path(tempfile.mkdtemp(prefix="kc-pamd.", dir="/usr/local/lib"))
    try:
        os.chmod(d, 0o755)
        (d / "sshd").write_text(stack)
        os.chmod(d / "sshd", 0o644)
        p = run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                 'mount --bind "$1" /etc/pam.d && exec "$2" check --config "$3"', "sh", d, HELPER, cfg], check=False)
        return p.stdout + p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fed_service(pam_service, workdir, cfg, value):
    """A PAM service whose root-owned pam_env line sets SSH_AUTH_INFO_0 before
    the module (no user file read): the value reaches the helper as sshd's own
    would. kc-session-driver opens sessions of it."""
    conf = workdir.path / f"authinfo-{secrets.token_hex(4)}.conf"
    conf.write_text(pam_env_line(value))
    os.chmod(conf, 0o644)
    return pam_service(f"config={cfg} timeout=10",
                       extra_before=f"session required pam_env.so readenv=0 user_readenv=0 conffile={conf}\n")


def fed_login(cluster, users, service, user, value):
    """Who a session of service gets for user while it is open, SSH_AUTH_INFO_0 being value."""
    d = Driver(service, user)
    try:
        assert d.open_rc == 0, d.lines
        assert d.env.get("SSH_AUTH_INFO_0") == value, f"the value did not reach PAM: {d.lines}"
        return cluster.whoami(current_token(users, user))
    finally:
        assert d.close() == ["close 0 Success"], d.lines


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca():
    c = SshCa()
    yield c
    c.close()


@pytest.fixture
def host():
    return unique_host_id()


@pytest.fixture
def sshds(installed):
    made = []

    def make(config, trusted_ca, **kw):
        s = CertSshd(installed, config, trusted_ca, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def logins(users):
    """Held ssh logins; those still open log out at the end and their sessions are waited for."""
    held = []

    def login(sshd, user, key=None, cert=None):
        held.append(Login(sshd, user, key, cert))
        return held[-1]

    yield login
    for s in held:
        s.logout()
    for user in {s.user for s in held}:
        wait_closed(users, user, limit=30)


@pytest.fixture
def principals_dir():
    """Root-managed authorized principals files, where sshd's StrictModes accepts them (not under /tmp)."""
    d = Path(tempfile.mkdtemp(prefix="kc-principals.", dir="/usr/local/lib"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def cert_config(cluster, workdir, ca, host, rules=None, principals_file=None):
    """The config and its trusted_ca_keys file: the elevated rule, then the default."""
    cluster.ensure_sa("team-a", "alice", clusterrole="view")
    cluster.ensure_sa("bastion-access", "admin", clusterrole="view")
    trusted = workdir.path / "ssh_ca.pub"
    trusted.write_text(ca.pub_line)
    os.chmod(trusted, 0o644)
    extra = (f"host_id: {host}\ntoken:\n  ttl: 8h\nssh_certificates:\n  trusted_ca_keys: {trusted}\n"
             + (f"  authorized_principals_file: {principals_file}\n" if principals_file else ""))
    return workdir.write_config(rules or ELEVATED_RULE + DEFAULT_RULE, extra=extra), trusted


def session_records(users, user):
    d = STATE_DIR / str(users.uid(user))
    return list(d.glob("session-*.json")) if d.exists() else []


# ---- elevation and its bound ----------------------------------------------------------------------


@security("an SSH certificate elevates a login until its valid-before and no longer: the token's exp is bounded "
          "by it; at valid-before one refresh revokes that token, cuts the user's watch and leaves the still-open "
          "ssh session a working token of the default rule")
def test_a_certificate_elevates_until_valid_before_then_refresh_remaps_the_open_session(cluster, workdir, users, ca,
                                                                                       host, sshds, logins):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    key = ca.user_key()
    cert = ca.sign(key, user, [user, "k8s-admin"], "-1m:+25s")
    ends = valid_before(cert)
    s = logins(sshd, user, key, cert)
    logged_in = time.time()
    assert (sshd.seen(user) or "").startswith(auth_info(cert)), sshd.seen(user)  # what the module read
    assert s.whoami() == ADMIN, sshd.log()
    admin = current_token(users, user)
    assert cluster.whoami(admin) == ADMIN
    exp = jwt_claims(admin)["exp"]
    assert exp <= max(ends, logged_in + FLOOR), (
        f"the elevated token expires at {exp}, past both the certificate's end ({ends:.0f}) and the API "
        f"server's 10-minute floor from the login ({logged_in + FLOOR:.0f})")
    watch = UserWatch(workdir, users, user, admin, "bastion-access")
    try:
        assert wait_for(lambda: watch.ready() == 1, 30), watch.text()
        # Before valid-before a refresh keeps the elevation: what follows is the certificate's end.
        refresh(cfg)
        assert current_token(users, user) == admin and s.whoami() == ADMIN
        assert time.time() < ends, "the certificate ended before the test looked: give it a longer window"
        sleep_past(ends)
        assert watch.ended() == 0, f"the watch ended before the refresh:\n{watch.text()}"
        start = time.monotonic()
        refresh(cfg)
        assert wait_for(lambda: watch.ended() == 1, 15), f"the admin token's watch was not cut:\n{watch.text()}"
        # The user's kubectl, in the session and outside it, before the helper's second cut (11 s after
        # the revocation), which would end a connection of theirs whatever its token.
        assert s.alive(), "the ssh session ended with its certificate"
        assert s.whoami() == DEFAULT
        now = current_token(users, user)
        assert now != admin and cluster.whoami(now) == DEFAULT
        p = kubectl_as(user, kubeconfig_of(users, user), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
        assert p.stdout.strip() == DEFAULT, p.stdout + p.stderr
        took = cluster.wait_refused(admin, limit=25)
        print(f"\nafter valid-before + one refresh: watch cut, admin token refused "
              f"{time.monotonic() - start:.1f}s after the refresh began ({took:.1f}s of it waiting)")
        assert s.alive()
    finally:
        watch.stop()


def test_a_plain_key_maps_to_the_default_rule(cluster, workdir, users, ca, host, sshds):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    sshd.allow(user)
    p = sshd.once(user, WHOAMI)
    assert whoami_of(p) == DEFAULT, sshd.log()
    assert (sshd.seen(user) or "").startswith("publickey ssh-ed25519 "), sshd.seen(user)  # sshd did tell the module
    assert wait_closed(users, user)


def test_a_second_session_without_a_certificate_keeps_the_default_rule_after_the_first_ones_ends(
        cluster, workdir, users, ca, host, sshds, logins):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    sshd.allow(user)
    key = ca.user_key()
    cert = ca.sign(key, user, [user, "k8s-admin"], "-1m:+20s")
    ends = valid_before(cert)
    with_cert = logins(sshd, user, key, cert)
    plain = logins(sshd, user)
    # Elevation is the uid's on this host: the plain session shares it while the certificate lasts.
    assert with_cert.whoami() == ADMIN and plain.whoami() == ADMIN, sshd.log()
    admin = current_token(users, user)
    assert time.time() < ends, "the certificate ended before the test looked: give it a longer window"
    sleep_past(ends)
    refresh(cfg)
    assert plain.whoami() == DEFAULT
    # The certificate's session logs out: the other one keeps the default rule. (All before the helper's
    # second cut, 11 s after the revocation, which would end a kubectl of the user's whatever its token.)
    with_cert.logout()
    assert wait_for(lambda: len(session_records(users, user)) == 1, 30), session_records(users, user)
    refresh(cfg)
    assert plain.alive() and plain.whoami() == DEFAULT
    assert cluster.whoami(current_token(users, user)) == DEFAULT
    cluster.wait_refused(admin, limit=25)


@security("a certificate valid for longer than the floor bounds its token's lifetime by its valid-before, not by "
          "the configured ttl")
def test_a_longer_certificate_bounds_the_tokens_lifetime_by_its_valid_before(cluster, workdir, users, ca, host, sshds,
                                                                               logins):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    key = ca.user_key()
    cert = ca.sign(key, user, [user, "k8s-admin"], "-1m:+30m")
    ends = valid_before(cert)
    s = logins(sshd, user, key, cert)
    assert s.whoami() == ADMIN, sshd.log()
    exp = jwt_claims(current_token(users, user))["exp"]
    # The helper asks for valid-before minus its own whole-second now; the API server adds that to its
    # later now: exp may pass valid-before by that second's fraction, rounded up to one.
    assert ends - 60 <= exp <= ends + 1, f"exp {exp}, the certificate ends at {ends:.0f} (ttl is 8h)"


@security("elevation ends with the session that justified it: when the certificate's session logs out, the user's "
          "other session drops to the default rule at once and the elevated token is refused")
def test_elevation_ends_when_the_certificate_session_logs_out(cluster, workdir, users, ca, host, sshds, logins):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    sshd.allow(user)
    key = ca.user_key()
    with_cert = logins(sshd, user, key, ca.sign(key, user, [user, "k8s-admin"], "-1m:+10m"))
    plain = logins(sshd, user)
    assert plain.whoami() == ADMIN, sshd.log()
    admin = current_token(users, user)
    with_cert.logout()
    assert wait_for(lambda: len(session_records(users, user)) == 1, 30), session_records(users, user)
    assert plain.whoami() == DEFAULT
    assert cluster.whoami(current_token(users, user)) == DEFAULT
    cluster.wait_refused(admin, limit=25)


@security("with authorized_principals_file, a role-principal certificate elevates a user only through a principal "
          "authorized for that user (bob's sre,k8s-admin certificate accepted for alice through sre never makes "
          "her an admin)")
def test_a_role_principal_elevates_only_through_a_principal_authorized_for_that_user(
        cluster, workdir, users, ca, host, sshds, principals_dir):
    cluster.ensure_sa("bastion-users", "kct-sre", clusterrole="view")
    alice, carol = users.make(), users.make()
    for user, listed in ((alice, "sre"), (carol, "k8s-admin")):
        (principals_dir / user).write_text(f"# {user} may act as\n{listed}\n")
        os.chmod(principals_dir / user, 0o644)
    cfg, trusted = cert_config(cluster, workdir, ca, host, rules=ELEVATED_RULE + SRE_RULE + DEFAULT_RULE,
                               principals_file=f"{principals_dir}/%u")
    sshd = sshds(cfg, trusted, extra=f"AuthorizedPrincipalsFile {principals_dir}/%u\n")
    key = ca.user_key()
    bobs = ca.sign(key, "bob", ["sre", "k8s-admin"], "-1m:+10m")
    assert whoami_of(sshd.once(alice, WHOAMI, key, bobs)) == SRE, sshd.log()
    # The same certificate, accepted for carol through k8s-admin, does make her an admin.
    assert whoami_of(sshd.once(carol, WHOAMI, key, bobs)) == ADMIN, sshd.log()
    out = explain(cfg, alice, bobs)
    assert re.search(rf"counts for {alice}; principals {alice} may act as: sre$", out, re.M), out
    assert "bastion-users/kct-sre" in out, out
    assert wait_closed(users, alice) and wait_closed(users, carol)


# ---- forgeries ------------------------------------------------------------------------------------


@security("SSH_AUTH_INFO_0 forged in ~/.pam_environment, with pam_env user_readenv=1 before the module in the "
          "session stack, is ignored, and check says why")
def test_auth_info_forged_in_pam_environment_is_ignored_and_check_says_why(cluster, workdir, users, ca, host, sshds,
                                                                           pam_service):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    # A trusted, valid certificate naming the user and k8s-admin, whose key the user never held.
    forged = ca.sign(ca.user_key(), user, [user, "k8s-admin"], "-1m:+10m")
    stack = ("session required pam_permit.so\n"
             "session required pam_env.so user_readenv=1 envfile=/etc/default/locale\n"
             "{probe}{module}")
    sshd = sshds(cfg, trusted, session=stack)
    sshd.allow(user)
    pw = pwd.getpwnam(user)
    env = users.home(user) / ".pam_environment"
    env.write_text(pam_env_line(auth_info(forged)))
    os.chown(env, pw.pw_uid, pw.pw_gid)
    p = sshd.once(user, WHOAMI)
    assert sshd.seen(user) == auth_info(forged), f"the forgery did not reach the module: {sshd.seen(user)!r}"
    assert whoami_of(p) == DEFAULT, sshd.log()
    assert wait_closed(users, user)
    said = check_as_sshd(sshd.pam.read_text(), cfg)
    assert re.search(r"^warning: SSH_AUTH_INFO_0 will be ignored for sshd logins: /etc/pam.d/sshd:4 runs pam_env.so "
                     r"with user_readenv=1 before pam_kubeconfig.so \(/etc/pam.d/sshd:6\)", said, re.M), said
    assert f"{trusted}: 1 trusted SSH CA key" in said, said
    # With the module first, check says certificates count ...
    good = "auth required pam_permit.so\nsession required pam_permit.so\n" + sshd.module_line + \
           "session required pam_env.so user_readenv=1\n"
    said = check_as_sshd(good, cfg)
    assert "SSH certificates count" in said and "will be ignored" not in said, said
    # ... and the forged value elevates when it is sshd's own word: it was ignored for the order alone.
    assert fed_login(cluster, users, fed_service(pam_service, workdir, cfg, auth_info(forged)), user,
                     auth_info(forged)) == ADMIN


@security("another user's valid certificate, accepted by sshd through a cert-authority principals= line the user "
          "wrote, does not elevate them")
def test_another_users_valid_certificate_does_not_elevate(cluster, workdir, users, ca, host, sshds):
    alice, bob = users.make(), users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    key = ca.user_key()
    bobs = ca.sign(key, bob, [bob, "k8s-admin"], "-1m:+10m")
    authorize_for(users, alice, f'cert-authority,principals="{bob}" {ca.pub_line}')
    p = sshd.once(alice, WHOAMI, key, bobs)
    assert sshd.seen(alice) and sshd.seen(alice).startswith(auth_info(bobs)), sshd.seen(alice)
    assert whoami_of(p) == DEFAULT, sshd.log()
    # The certificate does elevate the user it names.
    assert whoami_of(sshd.once(bob, WHOAMI, key, bobs)) == ADMIN, sshd.log()
    out = explain(cfg, alice, bobs)
    assert "does not count for" in out and f"{alice} is not among its principals" in out, out
    assert wait_closed(users, alice) and wait_closed(users, bob)


@security("a certificate signed by a CA the user put in their authorized_keys (cert-authority) does not elevate")
def test_a_certificate_from_a_ca_in_the_users_authorized_keys_does_not_elevate(cluster, workdir, users, ca, host,
                                                                                sshds):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    sshd = sshds(cfg, trusted)
    own = SshCa("the user's own CA")
    try:
        authorize_for(users, user, f"cert-authority {own.pub_line}")
        key = own.user_key()
        mine = own.sign(key, user, [user, "k8s-admin"], "-1m:+10m")
        p = sshd.once(user, WHOAMI, key, mine)
        assert sshd.seen(user) and sshd.seen(user).startswith(auth_info(mine)), sshd.seen(user)
        assert whoami_of(p) == DEFAULT, sshd.log()
        out = explain(cfg, user, mine)
        assert "does not count for" in out and "does not list" in out, out
        # The same principals signed by the trusted CA elevate.
        key2 = ca.user_key()
        assert whoami_of(sshd.once(user, WHOAMI, key2, ca.sign(key2, user, [user, "k8s-admin"], "-1m:+10m"))) == ADMIN
    finally:
        own.close()
    assert wait_closed(users, user)


@security("an expired or not-yet-valid certificate does not elevate: sshd refuses it, and fed to the module as "
          "sshd's own SSH_AUTH_INFO_0 the helper refuses it too")
def test_an_expired_or_not_yet_valid_certificate_does_not_elevate(cluster, workdir, users, ca, host, sshds,
                                                                  pam_service):
    user = users.make()
    cfg, trusted = cert_config(cluster, workdir, ca, host)
    key = ca.user_key()
    valid = ca.sign(key, user, [user, "k8s-admin"], "-1m:+10m")
    expired = ca.sign(key, user, [user, "k8s-admin"], "-2h:-1h")
    early = ca.sign(key, user, [user, "k8s-admin"], "+1h:+2h")
    sshd = sshds(cfg, trusted)
    for cert in (expired, early):
        p = sshd.once(user, "true", key, cert)
        assert p.returncode == 255 and "Permission denied" in p.stderr, p.stdout + p.stderr
    got = {name: fed_login(cluster, users, fed_service(pam_service, workdir, cfg, auth_info(cert)), user,
                           auth_info(cert))
           for name, cert in (("valid", valid), ("expired", expired), ("not yet valid", early))}
    assert got == {"valid": ADMIN, "expired": DEFAULT, "not yet valid": DEFAULT}
    assert "expired at" in explain(cfg, user, expired)
    assert "not valid before" in explain(cfg, user, early)
