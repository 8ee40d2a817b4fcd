"""The catalogue reviewers read: rules with HTI-1 source attributes, sources with their text; health checks."""
from __future__ import annotations


def test_rule_list(client, kb):
    data = client.get("/v1/rules").json()
    assert data["knowledge_version"] == kb.version
    assert {r["id"] for r in data["rules"]} == set(kb.rules)
    periop = next(r for r in data["rules"] if r["id"] == "ldn-perioperative-hold")
    assert periop["severity"] == "critical"      # the highest it can raise
    assert periop["url"] == "/v1/rules/ldn-perioperative-hold"


def test_rule_detail_has_the_hti1_source_attributes(client, kb):
    data = client.get("/v1/rules/ldn-opioid-coadministration").json()
    attrs = data["source_attributes"]
    assert attrs["developer"] == kb.meta["developer"]
    assert attrs["funding_source"] == kb.meta["funding_source"]
    assert attrs["release_date"] == "2026-11-22" and attrs["revision_date"] == "2026-11-22"
    quotes = {c["quote"] for c in attrs["bibliographic_citations"]}
    assert "LDN should be avoided in patients currently taking opioid medications as it may precipitate withdrawal" in quotes
    vardeman = next(c for c in attrs["bibliographic_citations"] if c["source_id"] == "ldn-vardeman-2023")
    assert vardeman["author"] == "Megan Vardeman, PA-C" and vardeman["date"] == "2023-04-17"
    elements = {e["input"]: e for e in attrs["patient_data_elements"]}
    assert set(elements) == {"ldn", "medications"} and all(e["required"] for e in elements.values())
    assert data["condition"] == kb.rules["ldn-opioid-coadministration"].raw["when"]
    assert len(data["test_cases"]) == len(kb.rules["ldn-opioid-coadministration"].tests)


def test_rule_detail_shows_parameters_and_escalations(client):
    data = client.get("/v1/rules/ldn-perioperative-hold").json()
    assert data["parameters"]["hold_days_max"] == {"value": 3, "unit": "d",
                                                   "description": data["parameters"]["hold_days_max"]["description"]}
    assert data["severities"] == ["warning", "critical"]
    assert data["escalations"][0]["severity"] == "critical"


def test_unknown_rule_is_404_problem(client):
    r = client.get("/v1/rules/ldn-nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "ldn-nothing" in r.json()["detail"]


def test_sources(client, kb):
    listing = client.get("/v1/sources").json()["sources"]
    assert {s["id"] for s in listing} == set(kb.sources)
    detail = client.get("/v1/sources/ldn-clinical-summary").json()
    assert detail["text"] == kb.sources["ldn-clinical-summary"].text
    assert "ldn-perioperative-hold" in detail["cited_by"]
    assert client.get("/v1/sources/nope").status_code == 404


def test_health_and_readiness(client, kb):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    dropped = ready.pop("dropped")
    assert ready == {"status": "ready", "audit": "ok", "cds_store": "ok", "knowledge_version": kb.version,
                     "active_rules": len(kb.active_rules)}
    assert set(dropped) == {"audit", "cds_store"}
