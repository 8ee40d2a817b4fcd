"""Suggestions an EHR would apply: valid R4 4.0.1 (fhir.resources 6.4, in its own environment), a hold that only
ends the dosages in force before it (R4 per-1), durations kept or converted with the reason, a changed dose whose
text says the new dose, uuids unique per hook call and stable for the same call."""
from __future__ import annotations

import copy

import pytest

from ..r4 import r4_problems, updates
from .support import (appointment, bundle, cards_by_rule, egfr, hook_request, ldn_draft, make_client,
                                oxycodone, post_hook, record)

PERIOP, ABOVE = "ldn-perioperative-hold", "ldn-dose-above-range"
SURGERY_IN_10_DAYS = appointment("apt-knee", "2026-03-11T08:00:00Z")     # hold from 2026-03-08: last dose 03-07


@pytest.fixture(scope="module")
def client(evaluator):
    return make_client(evaluator)


def _sign(client, draft, *, surgery=True, meds=(), hook_instance=None):
    body = hook_request("order-sign", drafts=[draft], prefetch=record(
        medicationRequests=bundle(*meds), medicationStatements=bundle(), egfr=bundle(egfr(95)), conditions=bundle(),
        appointments=bundle(*([SURGERY_IN_10_DAYS] if surgery else []))))
    if hook_instance:
        body["hookInstance"] = hook_instance
    response = post_hook(client, "ldn-order-sign", body)
    assert response.status_code == 200
    assert r4_problems(updates(response.json())) == []
    return response


def _held(response) -> dict:
    (suggestion,) = cards_by_rule(response)[PERIOP]["suggestions"]
    return suggestion["actions"][0]["resource"]


def _dosage(dose_mg: float, **bounds) -> dict:
    return {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", **bounds}},
            "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg", "system": "http://unitsofmeasure.org",
                                              "code": "mg"}}]}


def test_a_titration_step_after_the_hold_is_not_given_an_end_before_its_start(client):
    draft = ldn_draft()
    draft["dosageInstruction"] = [
        _dosage(1.5, boundsPeriod={"start": "2026-03-01", "end": "2026-03-20"}),
        _dosage(3.0, boundsPeriod={"start": "2026-03-21"})]                     # after the hold begins
    held = _held(_sign(client, draft))
    (dosage,) = held["dosageInstruction"]
    assert dosage["timing"]["repeat"]["boundsPeriod"] == {"start": "2026-03-01", "end": "2026-03-07"}
    assert "Dosage 2 starts on 2026-03-21" in held["note"][-1]["text"]


def test_a_dosage_already_ending_before_the_hold_keeps_its_end(client):
    draft = ldn_draft()
    draft["dosageInstruction"] = [_dosage(1.5, boundsPeriod={"start": "2026-03-01", "end": "2026-03-04"}),
                                  _dosage(3.0, boundsPeriod={"start": "2026-03-05"})]
    held = _held(_sign(client, draft))
    assert [d["timing"]["repeat"]["boundsPeriod"] for d in held["dosageInstruction"]] == [
        {"start": "2026-03-01", "end": "2026-03-04"}, {"start": "2026-03-05", "end": "2026-03-07"}]


def test_a_duration_that_ends_before_the_hold_is_kept_as_written(client):
    draft = ldn_draft(authored="2026-03-01")
    draft["dosageInstruction"] = [_dosage(4.5, boundsDuration={"value": 5, "unit": "d",
                                                               "system": "http://unitsofmeasure.org", "code": "d"})]
    held = _held(_sign(client, draft))
    repeat = held["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat["boundsDuration"]["value"] == 5 and "boundsPeriod" not in repeat


def test_a_duration_that_runs_into_the_hold_is_converted_with_the_reason(client):
    draft = ldn_draft(authored="2026-03-01")
    draft["dosageInstruction"] = [_dosage(4.5, boundsDuration={"value": 3, "unit": "mo",
                                                               "system": "http://unitsofmeasure.org", "code": "mo"})]
    held = _held(_sign(client, draft))
    repeat = held["dosageInstruction"][0]["timing"]["repeat"]
    assert "boundsDuration" not in repeat
    assert repeat["boundsPeriod"] == {"start": "2026-03-01", "end": "2026-03-07"}
    assert "duration (3 mo) from 2026-03-01" in held["note"][-1]["text"]


def test_a_changed_dose_rewrites_the_text_that_named_the_old_one(client):
    draft = ldn_draft(dose_mg=9)
    draft["dosageInstruction"][0]["text"] = "Take 9 mg by mouth at bedtime"
    draft["dosageInstruction"][0]["patientInstruction"] = "9 mg every night"
    draft["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Naltrexone 9 mg</div>'}
    (change,) = cards_by_rule(_sign(client, draft, surgery=False))[ABOVE]["suggestions"]
    resource = change["actions"][0]["resource"]
    dosage = resource["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1.5
    assert dosage["text"] == dosage["patientInstruction"] == "Take 1.5 mg once a day at bedtime."
    assert "9 mg" not in str(resource) and "text" not in resource          # the stale narrative is gone


def test_suggestion_uuids_are_unique_per_call_and_stable_for_the_same_call(client):
    draft = ldn_draft()
    first = _sign(client, copy.deepcopy(draft), meds=[oxycodone()], hook_instance="hook-a")
    again = _sign(client, copy.deepcopy(draft), meds=[oxycodone()], hook_instance="hook-a")
    other = _sign(client, copy.deepcopy(draft), meds=[oxycodone()], hook_instance="hook-b")

    def uuids(response):
        return [s["uuid"] for c in response.json()["cards"] for s in c.get("suggestions") or []]
    assert uuids(first) and uuids(first) == uuids(again)
    assert not set(uuids(first)) & set(uuids(other))


def test_every_suggested_resource_is_valid_r4(client):
    """On hold now (statusReason surg), a later hold (bounds), a dose change, deletes: all pass the R4 models."""
    on_hold = post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=[ldn_draft(dose_mg=9)], prefetch=record(
        medicationRequests=bundle(oxycodone()), appointments=bundle(appointment("a", "2026-03-02T08:00:00Z")))))
    resources = updates(on_hold.json())
    assert any(r.get("status") == "on-hold" for r in resources)
    assert r4_problems(resources) == []
    assert r4_problems([{"resourceType": "MedicationRequest", "status": "draft"}]) != []   # the validator bites
