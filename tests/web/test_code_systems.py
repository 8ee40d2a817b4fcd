"""The code systems the service puts into answers are its own URLs, under PUBLIC_BASE_URL, and each is served
there as a valid FHIR R4 CodeSystem holding the codes used; DetectedIssue.reference is absolute; every display
the service emits for an external code system is the one the code system publishes."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from service.cds_hooks import cards, codes
from service.settings import Settings

from ..cds_hooks.support import bundle, hook_request, ldn_draft, make_client, oxycodone, post_hook, record
from ..conftest import ROOT
from ..r4 import r4_problems

BASE = "https://cds.hospital.example/ldn"


@pytest.fixture(scope="module")
def client(evaluator):
    return make_client(evaluator, Settings(public_base_url=BASE))


def _served(client, system: str, code: str) -> dict:
    assert system.startswith(BASE + "/codesystems/")
    response = client.get(urlsplit(system).path.removeprefix("/ldn"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/fhir+json"
    resource = response.json()
    assert resource["url"] == system and r4_problems([resource]) == []
    return {c["code"]: c["display"] for c in resource["concept"]}[code]


def test_card_topics_are_code_systems_the_service_serves(client):
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(medicationRequests=bundle(oxycodone())))
    response = post_hook(client, "ldn-order-sign", body)
    topics = [c["source"]["topic"] for c in response.json()["cards"]]
    assert {t["code"] for t in topics} >= {"ldn-opioid-coadministration", "not-evaluated"}
    for topic in topics:
        assert _served(client, topic["system"], topic["code"]) == topic["display"]
    assert "ldn-cds.example" not in response.text and "urn:ldn-cds" not in response.text


def test_order_check_fhir_answer_references_are_absolute(client):
    body = {"as_of": "2026-03-01", "order": {"name": "Percocet 5/325", "kind": "new"},
            "profile": {"medications": [{"name": "Naltrexone 4.5 mg capsule (LDN)", "status": "active"}]}}
    fhir = client.post("/v1/order-checks", json=body, params={"format": "fhir"}).json()
    issues = [e["resource"] for e in fhir["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert issues and all(i["reference"].startswith(BASE + "/rules/") for i in issues)   # the rule pages
    (tag,) = fhir["meta"]["tag"]
    assert _served(client, tag["system"], tag["code"]) == tag["display"]
    assert r4_problems([fhir]) == []


def test_unknown_code_system_is_404(client):
    assert client.get("/codesystems/nope").status_code == 404


# Displays as published in R4 4.0.1: CodeSystem medicationrequest-status-reason and v3-ActCode (DetectedIssue.code).
# A display that differs by a full stop or a capital is a different display.
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PUBLISHED = {
    ("http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason", "surg"): "Patient scheduled for surgery",
    (V3, "DACT"): "drug action detected issue",
    (V3, "ALRTENDLATE"): "end too late alert",
    (V3, "CREACT"): "common reaction alert",
    (V3, "DOSEHIND"): "High Dose for Indication Alert",
}


def test_emitted_displays_are_the_published_ones():
    emitted = {(codes.STATUS_REASON_SYSTEM, codes.STATUS_REASON_SURGERY[0]): codes.STATUS_REASON_SURGERY[1]}
    vocabulary = json.loads((ROOT / "schemas" / "rule.schema.json").read_text())["$defs"]["v3_detected_issue_code"]
    emitted.update({(V3, c["const"]): c["title"] for c in vocabulary["oneOf"]})
    for key, display in PUBLISHED.items():
        assert emitted[key] == display, key
