"""The audit trail seen through the API: every decision recorded without PHI, readable, replayable; a store that
is down costs records (counted, /readyz degraded), never answers; a graceful shutdown loses nothing."""
from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

SECRETS = ("PAT-SECRET-123", "SECRETNAME", "SECRET-TIMING", "SECRET-PHARMACY")
BODY = {"as_of": "2026-03-01", "patient": {"id": "PAT-SECRET-123"},
        "ldn": {"status": "active", "dose_mg": 4.5, "timing": "SECRET-TIMING"},
        "medications": [{"name": "Oxycodone SECRETNAME 5 mg", "status": "active"}],
        "procedures": [{"name": "Knee SECRETNAME", "date": "2026-03-02", "elective": True}]}


@pytest.fixture
def audited(tmp_path, evaluator):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/audit.db", audit_flush_interval_s=0.05)
    with TestClient(create_app(settings, evaluator=evaluator)) as client:
        yield client, tmp_path / "audit.db"


def test_evaluation_is_recorded_and_replayed(audited, kb):
    client, _ = audited
    answer = client.post("/v1/evaluations", json=BODY).json()
    record = client.get(f"/v1/evaluations/{answer['evaluation_id']}", params={"replay": "true"}).json()
    assert record["channel"] == "evaluation" and record["knowledge_version"] == kb.version
    assert [(f["rule_id"], f["severity"]) for f in record["fired"]] == \
        [(a["rule_id"], a["severity"]) for a in answer["advisories"]]
    assert {n["rule_id"] for n in record["not_evaluated"]} == {n["rule_id"] for n in answer["not_evaluated"]}
    assert record["replay"]["replayed"] and record["replay"]["same"]
    assert record["replay"]["fired"] == record["fired"]
    assert record["patient_ref_hash"] and len(record["patient_ref_hash"]) == 64
    assert record["caller"] == "anonymous" and record["latency_ms"] > 0
    # An evaluation id is not an order-check id.
    assert client.get(f"/v1/order-checks/{answer['evaluation_id']}").status_code == 404


def test_order_check_is_recorded(audited):
    client, _ = audited
    body = {"order": {"name": "Naltrexone 4.5 mg capsule, compounded", "dose_mg": "4.5 mg", "kind": "new"},
            "profile": {"medications": [{"name": "Oxycodone SECRETNAME", "status": "active"}]},
            "pharmacy": "SECRET-PHARMACY"}
    answer = client.post("/v1/order-checks", json=body).json()
    record = client.get(f"/v1/order-checks/{answer['order_check_id']}").json()
    assert record["outcome"] == answer["verdict"] == "stop"
    assert "ldn-opioid-coadministration" in {f["rule_id"] for f in record["fired"]}


def test_no_phi_in_the_audit_store(audited):
    client, path = audited
    client.post("/v1/evaluations", json=BODY)
    client.post("/v1/evaluations", json=dict(BODY, ldn={"status": "active", "dose_mg": -1}))   # refused
    client.post("/v1/order-checks", json={"order": {"name": "Percocet SECRETNAME", "kind": "new"},
                                          "pharmacy": "SECRET-PHARMACY",
                                          "profile": {"medications": [{"name": "LDN 4.5 mg SECRETNAME"}]}})
    client.app.state.auditor.writer.flush(timeout=5)
    rows = sqlite3.connect(path).execute("SELECT * FROM decisions").fetchall()
    assert len(rows) == 2                  # the refused request decided nothing
    dump = json.dumps(rows, default=str)
    for secret in SECRETS:
        assert secret not in dump


def test_store_down_answers_flow_and_readyz_says_degraded(tmp_path, evaluator):
    # A PostgreSQL server that is not there (nothing listens on port 9 of loopback).
    settings = Settings(database_url="postgresql+psycopg://ldn@127.0.0.1:9/audit", audit_flush_interval_s=0.05)
    with TestClient(create_app(settings, evaluator=evaluator)) as client:
        assert client.post("/v1/evaluations", json=BODY).status_code == 200
        client.app.state.auditor.writer.flush(timeout=10)
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["audit"] == "unavailable"
        assert 'ldn_audit_dropped_total{reason="store_error"}' in client.get("/metrics").text


def test_graceful_shutdown_flushes_everything(tmp_path, evaluator):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/audit.db", audit_flush_interval_s=60)
    with TestClient(create_app(settings, evaluator=evaluator)) as client:
        ids = [client.post("/v1/evaluations", json=BODY).json()["evaluation_id"] for _ in range(50)]
    rows = {r[0] for r in sqlite3.connect(tmp_path / "audit.db").execute("SELECT id FROM decisions")}
    assert set(ids) <= rows


def test_audit_read_needs_the_scope(tmp_path, evaluator):
    import yaml
    from service.web.auth import hash_key
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"id": "pharmacy", "sha256": hash_key("k1"), "scopes": ["evaluate"]},
                                             {"id": "auditor", "sha256": hash_key("k2"), "scopes": ["audit-read"]}]}))
    settings = Settings(database_url=f"sqlite:///{tmp_path}/audit.db", api_keys_file=keys,
                        audit_flush_interval_s=0.05)
    with TestClient(create_app(settings, evaluator=evaluator)) as client:
        eid = client.post("/v1/evaluations", json=BODY, headers={"X-API-Key": "k1"}).json()["evaluation_id"]
        assert client.get(f"/v1/evaluations/{eid}", headers={"X-API-Key": "k1"}).status_code == 403
        record = client.get(f"/v1/evaluations/{eid}", headers={"X-API-Key": "k2"}).json()
        assert record["caller"] == "pharmacy"
