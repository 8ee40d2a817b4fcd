"""The scale-out proof (tools/proof_scaleout.py) as `make proof-scaleout` runs it: nginx in front of two replicas
on one PostgreSQL, loopback only. Each check prints a line; any failure fails the proof (exit status 1)."""
from __future__ import annotations

import os
import subprocess

from .conftest import ROOT

CHECKS = ("replayed on the other replica: 20/20 refused", "read by id from replica B: 5/5",
          "read by id from replica A: 5/5", "stored by the first 5x, duplicate at the second 5x",
          "was never sent to a replica", "300/300 answered 200", "20/20 identical", "all checks passed")


def test_make_proof_scaleout():
    assert os.environ.get("TEST_DATABASE_URL"), "make test / .ci/run start PostgreSQL (.ci/postgres.sh)"
    proc = subprocess.run(["make", "--no-print-directory", "-s", "proof-scaleout"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "FAIL" not in proc.stdout
    for expected in CHECKS:
        assert expected in proc.stdout, expected
