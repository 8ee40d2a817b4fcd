"""FHIR R4 4.0.1 validation for tests: fhir.resources 6.4 (the last R4 line; pydantic 1) runs in its own
environment, .venv-r4, which `make test` creates (tools/r4-constraints.txt), through tools/r4_validate.py."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable

import pytest

from .conftest import ROOT

R4_PYTHON = Path(os.environ.get("LDN_R4_PYTHON") or ROOT / ".venv-r4" / "bin" / "python")


def r4_problems(resources: Iterable[dict[str, Any]]) -> list[str]:
    """Each resource validated as R4 (structure, types, required elements), plus the invariant per-1 of every
    Period in a dosage's bounds (start <= end), which the models do not check."""
    resources = list(resources)
    if not R4_PYTHON.exists():
        pytest.fail(f"{R4_PYTHON} is missing: `make test` creates the R4 validator's environment (.venv-r4)")
    out = subprocess.run([str(R4_PYTHON), str(ROOT / "tools" / "r4_validate.py")], input=json.dumps(resources),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) + [p for r in resources for p in _per1(r)]


def _per1(resource: dict[str, Any]) -> list[str]:
    problems = []
    for i, dosage in enumerate(resource.get("dosageInstruction") or []):
        period = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}
        if "start" in period and "end" in period and \
                dt.date.fromisoformat(period["start"][:10]) > dt.date.fromisoformat(period["end"][:10]):
            problems.append(f"dosageInstruction[{i}]: per-1, boundsPeriod ends before it starts ({period})")
    return problems


def updates(response_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource a CDS Hooks response proposes (create or update actions)."""
    return [a["resource"] for c in response_json.get("cards", []) for s in c.get("suggestions") or []
            for a in s["actions"] if "resource" in a]
