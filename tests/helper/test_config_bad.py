"""Every broken config in tests/config-bad/ makes `check` print the message
beside it (NAME.expected: PATH:LINE:COL: what is wrong and what to write) and
exit 2. A first line "# setup: ..." prepares what YAML cannot say."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, helper

CASES = sorted(p.stem for p in (REPO / "tests/config-bad").glob("*.yaml"))


def prepare(name, cluster_ca):
    d = Path(tempfile.mkdtemp(prefix="kc-bad."))
    os.chmod(d, 0o755)
    shutil.copy(cluster_ca, d / "ca.pem")
    os.chmod(d / "ca.pem", 0o644)
    for token, mode, content in (("ok", 0o600, "abc\n"), ("empty", 0o600, ""), ("group", 0o640, "abc\n"),
                                 ("world", 0o644, "abc\n")):
        (d / f"{token}.token").write_text(content)
        os.chmod(d / f"{token}.token", mode)
    text = (REPO / "tests/config-bad" / f"{name}.yaml").read_text().replace("@DIR@", str(d))
    config = d / "config.yaml"
    setup = text.splitlines()[0] if text else ""
    if setup == "# setup: symlink":
        (d / "real.yaml").write_text(text)
        os.chmod(d / "real.yaml", 0o644)
        config.symlink_to(d / "real.yaml")
    else:
        config.write_text(text)
        os.chmod(config, 0o666 if setup == "# setup: chmod 0666" else 0o644)
    return d, config


def test_there_are_enough_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", CASES)
def test_check_names_the_problem(name, cluster):
    d, config = prepare(name, cluster.ca_file)
    try:
        p = helper("check", "--config", config)
        want = (REPO / "tests/config-bad" / f"{name}.expected").read_text().strip()
        want = want.replace("{config}", str(config)).replace("{dir}", str(d))
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stderr.strip() == want
        assert p.stdout == ""
    finally:
        shutil.rmtree(d)
