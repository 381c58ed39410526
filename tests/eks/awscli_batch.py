"""Runs the real awscli for many cases in one process, through the entry point
the `aws` script calls (awscli.clidriver.create_clidriver().main), so a matrix
of `aws eks get-token` runs under one frozen clock costs one interpreter start.

stdin: a JSON list of {"args": [...], "env": {...}}; each case sees exactly the
process's environment plus its env. stdout: a JSON list of {"rc", "stdout",
"stderr"} in the same order."""
import io
import json
import os
import sys

import botocore.loaders
import botocore.session
from awscli.clidriver import create_clidriver

# botocore reads its data files (service models, endpoints) through a Loader that
# caches them per instance; one instance for the whole batch reads them once
# instead of once per case. It changes what is read from disk, not what is run.
_loaders = {}
_create_loader = botocore.loaders.create_loader


def _shared_loader(search_path_string=None):
    if search_path_string not in _loaders:
        _loaders[search_path_string] = _create_loader(search_path_string)
    return _loaders[search_path_string]


botocore.loaders.create_loader = _shared_loader
botocore.session.create_loader = _shared_loader


def run(case, base):
    os.environ.clear()
    os.environ.update(base)
    os.environ.update(case["env"])
    out, err = io.BytesIO(), io.BytesIO()
    real = sys.stdout, sys.stderr
    wrappers = io.TextIOWrapper(out, encoding="utf-8", newline=""), io.TextIOWrapper(err, encoding="utf-8", newline="")
    sys.stdout, sys.stderr = wrappers
    try:
        rc = create_clidriver().main(list(case["args"]))
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    finally:
        for w in wrappers:
            w.flush()
            w.detach()
        sys.stdout, sys.stderr = real
    return {"rc": rc, "stdout": out.getvalue().decode(), "stderr": err.getvalue().decode()}


def main():
    cases = json.load(sys.stdin)
    base = dict(os.environ)
    results = [run(c, base) for c in cases]
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
