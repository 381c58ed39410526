"""Throwaway certificates for the loopback stand-ins (openssl, EC P-256)."""
import os
import subprocess
from pathlib import Path

import fakeclock


def make_ca(d: Path, name):
    """A CA: returns (certificate, key)."""
    d.mkdir(parents=True, exist_ok=True)
    crt, key = d / f"{name}-ca.pem", d / f"{name}-ca.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", f"/CN={name} CA", "-keyout", key, "-out", crt], check=True,
                   capture_output=True)
    os.chmod(crt, 0o644)
    return crt, key


def sign_cert(d: Path, name, ca_cert, ca_key, san="IP:127.0.0.1", when=None):
    """A serving certificate for san signed by the CA: returns (certificate, key).
    when: a libfaketime offset ("-10d") to make it expired."""
    key, csr, crt, ext = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                    f"/CN={name}", "-keyout", key, "-out", csr], check=True, capture_output=True)
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    cmd = ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
           "-extfile", ext, "-out", crt]
    env = {**os.environ, **fakeclock.env(when)} if when else None
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return crt, key
