"""Fixtures and helpers the EKS tier's modules share (imported by each: a
conftest.py here would shadow tests/conftest.py)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import fakeclock
from conftest import HELPER
from standins import AwsStandin, make_tls

HERE = Path(__file__).resolve().parent
CLEAN_ENV = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "LANG": "C"}


@pytest.fixture(scope="module")
def tls():
    d = Path(tempfile.mkdtemp(prefix="kc-eks-tls."))
    os.chmod(d, 0o755)
    ca = make_tls(d)
    yield d, ca
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sts(tls):
    s = AwsStandin(tls[0])
    yield s
    s.close()


def frozen_now():
    """A frozen clock for byte-identity that the verifier still finds current:
    now, to the second, as faketime reads it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def awscli_batch(cases, when, home="/nonexistent"):
    """The real awscli for each case ({"args", "env"}) under libfaketime at when."""
    env = {**CLEAN_ENV, "HOME": home, "TZ": "UTC", **fakeclock.env(when)}
    p = subprocess.run([sys.executable, str(HERE / "awscli_batch.py")],
                       input=json.dumps(cases), capture_output=True, text=True, env=env, timeout=900)
    if p.returncode != 0:
        raise AssertionError(f"awscli_batch failed:\n{p.stderr}")
    return json.loads(p.stdout)


def ours(args, env, when, home="/nonexistent", stdin=None):
    """pam-kubeconfig eks-token under libfaketime at when."""
    full = {**CLEAN_ENV, "HOME": home, "TZ": "UTC", **env, **fakeclock.env(when)}
    return subprocess.run([str(HELPER), "eks-token", *args], env=full, capture_output=True,
                          text=True, timeout=120, input=stdin)


def token_of(stdout):
    return json.loads(stdout)["status"]["token"]
