"""Values from real charts that are not what FHIR promises: numbers that are not finite or do not fit a float,
strings that are not valid Unicode. Each is read as absent (the "not fully checked" card says which) or refused
with a 4xx; never a 500, and one bad resource never silences the hook."""
from __future__ import annotations

import json

import pytest

from .support import (appointment, bundle, cards_by_rule, egfr, hook_request, ldn_draft, make_client,
                                oxycodone, record)
from .validator import validate_response

HUGE = int("9" * 320)            # valid JSON; float() of it raises OverflowError
OPIOID, PERIOP, GAP = "ldn-opioid-coadministration", "ldn-perioperative-hold", "not-evaluated"


@pytest.fixture(scope="module")
def client(evaluator):
    c = make_client(evaluator)
    return c


def _post(client, body: dict | str):
    raw = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/cds-services/ldn-order-sign", content=raw, headers={"content-type": "application/json"})
    if response.status_code == 200:
        assert validate_response(response.json(), ours=True) == []
    return response


def _sign(drafts, **record_values):
    values = dict(medicationRequests=bundle(oxycodone()), medicationStatements=bundle(), egfr=bundle(egfr(95)),
                  conditions=bundle(), appointments=bundle())
    values.update(record_values)
    return hook_request("order-sign", drafts=drafts, prefetch=record(**values))


@pytest.mark.parametrize("where", ["dose", "frequency", "period"])
def test_a_huge_dose_or_schedule_number_is_an_unknown_dose_with_the_reason(client, where):
    draft = ldn_draft()
    dosage = draft["dosageInstruction"][0]
    if where == "dose":
        dosage["doseAndRate"][0]["doseQuantity"]["value"] = HUGE
    else:
        dosage["timing"]["repeat"][where] = HUGE
    response = _post(client, _sign([draft]))
    assert response.status_code == 200
    cards = cards_by_rule(response)
    assert OPIOID in cards                                     # the hook still answers about what it can read
    gap = cards[GAP]
    assert "LDN dose" in gap["summary"] and "unreadable values" in gap["summary"]
    path = "doseAndRate[0].doseQuantity.value" if where == "dose" else f"timing.repeat.{where}"
    assert f"dosageInstruction[0].{path}" in gap["detail"]


def test_a_frequency_that_cannot_be_read_is_not_taken_as_once_a_day(client):
    draft = ldn_draft(dose_mg=4.5)
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = float("inf")
    raw = json.dumps(_sign([draft]))                          # Python's json writes (and reads) Infinity
    assert "Infinity" in raw
    gap = cards_by_rule(_post(client, raw))[GAP]
    assert "LDN dose" in gap["summary"]


def test_one_bad_egfr_does_not_silence_the_hook_and_the_others_are_used(client):
    bad = egfr(HUGE, date="2026-02-20")
    bad["id"] = "egfr-bad"
    response = _post(client, _sign([ldn_draft()], egfr=bundle(bad, egfr(25, date="2026-01-10"))))
    cards = cards_by_rule(response)
    assert cards["ldn-renal-impairment"]["indicator"] in ("warning", "critical")   # the readable result counts
    assert "Observation/egfr-bad valueQuantity.value" in cards[GAP]["detail"]


def test_only_bad_egfr_values_mean_kidney_function_unknown(client):
    cards = cards_by_rule(_post(client, _sign([ldn_draft()], egfr=bundle(egfr(HUGE)))))
    assert "ldn-renal-impairment" not in cards
    assert "kidney function" in cards[GAP]["summary"] and "unreadable values" in cards[GAP]["summary"]


def test_a_lone_surrogate_in_a_name_that_reaches_a_card(client):
    body = _sign([ldn_draft()], medicationRequests=bundle(oxycodone(), {
        **oxycodone("oxy-2"), "medicationCodeableConcept": {"text": "OXY-MARKER", "coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049621", "display": "OXY-MARKER"}]}}))
    raw = json.dumps(body).replace("OXY-MARKER", "Oxycodone \\ud800 5 mg")
    response = _post(client, raw)
    assert response.status_code == 200                        # the name is absent; the code still says opioid
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"
    assert "\\ud800" not in response.text


def test_non_finite_numbers_in_the_draft_drop_the_update_not_the_cards(client):
    draft = ldn_draft()
    draft["dispenseRequest"] = {"quantity": {"value": float("nan")}}
    body = _sign([draft], appointments=bundle(appointment("apt-1", "2026-03-11T08:00:00Z")))
    raw = json.dumps(body)
    assert "NaN" in raw
    response = _post(client, raw)
    assert response.status_code == 200
    periop = cards_by_rule(response)[PERIOP]
    assert "suggestions" not in periop or all(a["type"] != "update" for s in periop["suggestions"]
                                                for a in s["actions"])


def test_a_lone_surrogate_in_a_field_the_service_keeps_is_a_422(client):
    raw = json.dumps(_sign([ldn_draft()])).replace('"hookInstance": "', '"hookInstance": "\\udc00', 1)
    response = _post(client, raw)
    assert response.status_code == 422 and "hookInstance" in response.text
