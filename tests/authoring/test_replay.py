"""`ldn-rules replay`: a SQLite audit store filled by real evaluations through the app, replayed under a candidate
knowledge base by the installed console script."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.audit.store import AuditStore
from service.settings import Settings

from ..conftest import ROOT
from .test_cli import bump, edit, lines, run

LDN = {"status": "active", "dose_mg": 4.5, "timing": "bedtime"}
KNEE_IN_10_DAYS = [{"name": "Knee replacement", "date": "2026-03-11", "elective": True, "opioids_expected": True}]
BODIES = (
    [{"as_of": "2026-03-01", "ldn": LDN, "renal": {"egfr": 42}}] * 3             # renal: fires at < 60, not < 40
    + [{"as_of": "2026-03-01", "ldn": LDN, "renal": {"egfr": 30}}] * 2           # renal: fires either way
    + [{"as_of": "2026-03-01", "ldn": LDN, "procedures": KNEE_IN_10_DAYS}] * 2   # hold: warning, critical at <= 10
    + [{"as_of": "2026-03-01", "ldn": {**LDN, "dose_mg": 4.8}}]                  # above range only when max is 4.6
)


@pytest.fixture(scope="module")
def audit_url(tmp_path_factory, evaluator) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('replay')}/audit.db"
    app = create_app(Settings(database_url=url), evaluator=evaluator)
    with TestClient(app) as client:                 # leaving it shuts the app down: every record is flushed
        for body in BODIES:
            assert client.post("/v1/evaluations", json=body).status_code == 200
    store = AuditStore(url)
    assert store.count() == len(BODIES)
    store.close()
    return url


@pytest.fixture()
def candidate(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    edit(rules, "ldn/ldn-renal-impairment.yaml", "value: 60", "value: 40")
    edit(rules, "ldn/ldn-perioperative-hold.yaml", "value: 2\n", "value: 10\n")      # hold_days_min
    edit(rules, "ldn/ldn-dose-above-range.yaml", "value: 5\n", "value: 4.6\n")      # ldn_max_mg
    for name in ("ldn-renal-impairment", "ldn-perioperative-hold", "ldn-dose-above-range"):
        bump(rules, f"ldn/{name}.yaml")
    assert run("lock", "--rules", str(rules)).returncode == 0
    return rules


def test_replay_reports_what_a_candidate_would_change_per_rule(audit_url, candidate):
    proc = run("replay", "--rules", str(candidate), "--format", "json", env={"DATABASE_URL": audit_url})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["replayed"], report["changed"], report["without_fact"]) == (8, 6, 0)
    assert report["rules"] == {
        "ldn-dose-above-range": {"newly_fired": 1, "no_longer_fired": 0, "severity_changes": {}},
        "ldn-perioperative-hold": {"newly_fired": 0, "no_longer_fired": 0,
                                   "severity_changes": {"warning -> critical": 2}},
        "ldn-renal-impairment": {"newly_fired": 0, "no_longer_fired": 3, "severity_changes": {}}}

    text = run("replay", "--rules", str(candidate), "--database-url", audit_url)
    assert text.returncode == 0
    assert lines(text)[2:] == [
        "6 of 8 would change",
        "rule                    newly fired  no longer fired  severity changes",
        "ldn-dose-above-range              1                0  -",
        "ldn-perioperative-hold            0                0  warning -> critical: 2",
        "ldn-renal-impairment              0                3  -"]


def test_replay_under_the_shipped_rules_changes_nothing_and_since_filters(audit_url):
    same = json.loads(run("replay", "--format", "json", "--database-url", audit_url).stdout)
    assert (same["replayed"], same["changed"], same["rules"]) == (8, 0, {})
    later = run("replay", "--since", "2999-01-01", "--database-url", audit_url)
    assert later.returncode == 0 and "0 of 0 would change" in later.stdout
    earlier = run("replay", "--since", "2000-01-01", "--database-url", audit_url)
    assert "0 of 8 would change" in earlier.stdout


def test_replay_without_a_store_or_with_a_bad_date_says_so(tmp_path):
    missing = run("replay", "--database-url", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and "no audit store at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    bad = run("replay", "--since", "last tuesday")
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_the_store_is_read_in_batches_in_time_order(audit_url):
    store = AuditStore(audit_url)
    try:
        assert [r.id for r in store.iterate(batch=3)] == [r.id for r in store.query(limit=100)]
        assert len(list(store.iterate(batch=1))) == len(BODIES)
    finally:
        store.close()
