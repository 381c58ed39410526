"""Ship it: man pages render without warnings; `make install` honours DESTDIR and
the path variables; the Debian package builds (running the unit tier), passes
lintian, installs, works through the real libpam with the installed files, and
purges without leaving anything behind."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, preload_env, run, security

MANPAGES = ["man/pam_kubeconfig.8", "man/pam-kubeconfig.8", "man/pam_kubeconfig.yaml.5"]


@pytest.mark.parametrize("page", MANPAGES)
def test_man_pages_render_without_warnings(page):
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(REPO / page)], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"})
    assert p.returncode == 0
    assert p.stderr == "", p.stderr
    text = re.sub(".\b", "", p.stdout)  # bold and underline are overstruck
    assert "EXAMPLES" in text and "SEE ALSO" in text


def test_make_install_honours_destdir_and_paths(tmp_path):
    dest = tmp_path / "root"
    run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/opt/kc", "SBINDIR=/opt/kc/bin",
         "PAMDIR=/opt/kc/security", "SYSCONFDIR=/opt/kc/etc", "UNITDIR=/opt/kc/units", "B=build/install-test"],
        cwd=REPO, timeout=600)
    helper = dest / "opt/kc/bin/pam-kubeconfig"
    module = dest / "opt/kc/security/pam_kubeconfig.so"
    assert helper.exists() and module.exists()
    assert b"/opt/kc/bin/pam-kubeconfig" in module.read_bytes()  # the helper's path is compiled in
    assert (dest / "opt/kc/etc/pam_kubeconfig/config.yaml.example").exists()
    assert "/opt/kc/bin/pam-kubeconfig gc" in (dest / "opt/kc/units/pam-kubeconfig-gc.service").read_text()
    assert oct(os.stat(dest / "var/lib/pam_kubeconfig").st_mode & 0o777) == "0o700"
    # systemd (252, Debian 12's) loads the units as installed: their ExecStart= pointed at the binary
    # under DESTDIR, as the files' own directory; no man page here to check.
    units = tmp_path / "units"
    units.mkdir()
    for u in (dest / "opt/kc/units").iterdir():
        (units / u.name).write_text(u.read_text().replace("/opt/kc/bin/pam-kubeconfig", str(helper)))
    p = run(["systemd-analyze", "verify", "--man=no", *sorted(str(u) for u in units.iterdir())], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    run(["make", "-s", "uninstall", f"DESTDIR={dest}", "PREFIX=/opt/kc", "SBINDIR=/opt/kc/bin",
         "PAMDIR=/opt/kc/security", "SYSCONFDIR=/opt/kc/etc", "UNITDIR=/opt/kc/units"], cwd=REPO)
    assert not helper.exists() and not module.exists()
    shutil.rmtree(REPO / "build/install-test", ignore_errors=True)


@pytest.fixture(scope="module")
def package():
    d = Path(tempfile.mkdtemp(prefix="kc-deb."))
    src = d / "src"
    src.mkdir()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "--null", "-T", "-", "-cf", str(d / "src.tar")], cwd=REPO, input=files, check=True)
    run(["tar", "-xf", d / "src.tar", "-C", src])
    p = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, check=False, timeout=1200)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "passed, 0 failed" in p.stdout + p.stderr  # the unit tier ran in the build
    deb = [f for f in glob.glob(str(d / "pam-kubeconfig_*.deb"))]
    assert len(deb) == 1
    yield Path(deb[0])
    shutil.rmtree(d, ignore_errors=True)


def test_package_has_no_lintian_errors(package):
    p = run(["lintian", "--fail-on", "error,warning", str(package)], check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@security("the installed package works through the real libpam, and purge leaves nothing behind")
def test_package_installs_works_and_purges_clean(package, cluster, workdir, users):
    assert subprocess.run(["dpkg", "-s", "pam-kubeconfig"], capture_output=True).returncode != 0, \
        "pam-kubeconfig is already installed on this machine"
    run(["dpkg", "-i", package], timeout=300)
    try:
        listed = [l for l in run(["dpkg", "-L", "pam-kubeconfig"]).stdout.splitlines() if l.strip()]
        multiarch = run(["gcc", "-print-multiarch"]).stdout.strip()
        module = f"/lib/{multiarch}/security/pam_kubeconfig.so"
        assert module in listed and "/usr/sbin/pam-kubeconfig" in listed
        assert oct(os.stat("/var/lib/pam_kubeconfig").st_mode & 0o777) == "0o700"
        assert run(["man", "-w", "pam_kubeconfig.yaml"]).stdout.strip().endswith("pam_kubeconfig.yaml.5.gz")

        # The PAM check against the installed files: the module by name from the
        # system's PAM directory, and the helper at its compiled-in /usr/sbin path.
        cluster.ensure_sa("team-a", "alice", clusterrole="view")
        user = users.make()
        cfg = workdir.write_config(f"  - user: {user}\n    cluster: test\n    serviceaccount: team-a/alice\n")
        service = f"kc-pkg-{os.getpid()}"
        Path(f"/etc/pam.d/{service}").write_text(f"session required pam_kubeconfig.so config={cfg}\n")
        try:
            p = run(["pamtester", "-v", service, user, "open_session", "close_session"], check=False,
                    env=preload_env())
            assert p.returncode == 0, p.stdout + p.stderr
            assert "kubectl: context test as team-a/alice" in p.stdout + p.stderr
        finally:
            Path(f"/etc/pam.d/{service}").unlink()
    finally:
        run(["dpkg", "--purge", "pam-kubeconfig"], timeout=300)
    left = [f for f in listed if os.path.exists(f) and not os.path.isdir(f)]
    assert left == []
    for d in ("/var/lib/pam_kubeconfig", "/var/cache/pam_kubeconfig", "/etc/pam_kubeconfig",
              "/usr/share/doc/pam-kubeconfig"):
        assert not os.path.exists(d), d
