"""Prefetch: absent, null and OperationOutcome are three different cases; missing data is fetched from fhirServer
with the bearer token (a local stub here: no network), else 412 for what is required and an info card for the
rest. The token goes to fhirServer only and is never logged."""
from __future__ import annotations

import logging

import httpx
import pytest

from service.cds_hooks.models import OrderSignRequest, Resource
from service.settings import Settings

from .support import (FhirStub, appointment, bundle, cards_by_rule, egfr, example, hook_request,
                                ldn_draft, make_client, medication_request, oxycodone, post_hook, record)

SERVER = "https://ehr.example.org/fhir"
TOKEN = "TOKEN-SECRET-0b7e"
PATIENT = "PATIENT-SECRET-42"
AUTH = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read",
        "subject": "ldn-cds"}
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
OPIOID = "ldn-opioid-coadministration"


def _ehr(**routes):
    """A stub EHR: the patient takes oxycodone; every other search is empty unless given."""
    defaults = {"/MedicationRequest": bundle(oxycodone()), "/MedicationStatement": bundle(),
                "/Observation": bundle(egfr(90)), "/Condition": bundle(), "/Appointment": bundle(),
                "/Procedure": bundle(), "/ServiceRequest": bundle()}
    defaults.update(routes)
    return FhirStub(defaults)


def _call(evaluator, stub, prefetch=None, *, server=SERVER, auth=AUTH, settings=None, drafts=None):
    client = make_client(evaluator, settings=settings, transport=stub)
    body = hook_request("order-sign", drafts=drafts or [ldn_draft(patient=PATIENT)], prefetch=prefetch,
                        patient=PATIENT, fhirServer=server, fhirAuthorization=auth)
    return post_hook(client, "ldn-order-sign", body)


def test_absent_keys_are_fetched_with_the_bearer_token(evaluator):
    stub = _ehr()
    response = _call(evaluator, stub)
    assert response.status_code == 200
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"
    fetched = {r.url.path.rsplit("/", 1)[-1] for r in stub.requests}
    assert fetched == {"MedicationRequest", "MedicationStatement", "Observation", "Condition", "Appointment",
                       "Procedure", "ServiceRequest"}                            # never Patient: not needed
    for request in stub.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/fhir+json"
        assert str(request.url).startswith(SERVER + "/") and request.url.params["patient"] == PATIENT
    meds = next(r for r in stub.requests if r.url.path.endswith("/MedicationRequest"))
    assert meds.url.params["status"] == "active"


def test_null_means_no_data_and_is_not_fetched(evaluator):
    stub = _ehr()
    response = _call(evaluator, stub, prefetch=record(medicationRequests=None))
    assert response.status_code == 200 and stub.requests == []
    assert OPIOID not in cards_by_rule(response)                # the record has no medications: nothing to avoid


def test_an_operation_outcome_is_an_error_and_is_refetched(evaluator):
    stub = _ehr()
    response = _call(evaluator, stub, prefetch=record(medicationRequests=OUTCOME))
    assert [r.url.path for r in stub.requests] == ["/fhir/MedicationRequest"]
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"


def test_an_error_inside_a_bundle_is_an_error_a_warning_is_not(evaluator):
    with_error = bundle(oxycodone(), OUTCOME)
    stub = _ehr(**{"/MedicationRequest": bundle()})
    response = _call(evaluator, stub, prefetch=record(medicationRequests=with_error))
    assert len(stub.requests) == 1 and OPIOID not in cards_by_rule(response)   # the server's answer replaced it
    warning = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "incomplete"}]}
    response = _call(evaluator, _ehr(), prefetch=record(medicationRequests=bundle(oxycodone(), warning)), auth=None)
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"


@pytest.mark.parametrize("value", ["absent", "outcome"])
def test_required_data_that_cannot_be_had_is_412(evaluator, value):
    prefetch = {} if value == "absent" else {"medicationRequests": OUTCOME}
    response = _call(evaluator, _ehr(), prefetch=prefetch, auth=None)
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    assert "medicationRequests" in outcome["issue"][0]["diagnostics"]
    assert PATIENT not in response.text


@pytest.mark.parametrize("failure", [
    httpx.Response(500), httpx.Response(200, text="<html>"), httpx.Response(200, json={"no": "resourceType"}),
    httpx.Response(302, headers={"location": "https://elsewhere.example/fhir/MedicationRequest"}),
    "timeout",
])
def test_a_failing_fhir_server_gives_412(evaluator, failure):
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        return failure
    stub = FhirStub(handler)
    response = _call(evaluator, stub)
    assert response.status_code == 412
    assert all(r.url.host == "ehr.example.org" for r in stub.requests)        # the redirect was not followed


def test_optional_data_that_cannot_be_had_is_an_info_card(evaluator):
    stub = _ehr(**{"/Observation": httpx.Response(503), "/Condition": httpx.Response(503)})
    cards = cards_by_rule(_call(evaluator, stub, prefetch={"medicationRequests": bundle()}))
    gap = cards["not-evaluated"]
    assert "kidney function" in gap["summary"]
    assert "could not be retrieved" in gap["detail"]


def test_pages_are_followed_on_the_fhir_server_only(evaluator):
    first = bundle(medication_request("m1", text="metformin 500 mg"))
    first["link"] = [{"relation": "next", "url": f"{SERVER}/MedicationRequest?page=2"}]
    stub = _ehr(**{"/MedicationRequest?page=2": bundle(oxycodone())})
    response = _call(evaluator, stub, prefetch=record(medicationRequests=first))
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"          # the opioid was on page 2
    elsewhere = bundle()
    elsewhere["link"] = [{"relation": "next", "url": "https://attacker.example/fhir/MedicationRequest?page=2"}]
    stub = _ehr()
    response = _call(evaluator, stub, prefetch=record(medicationRequests=elsewhere))
    assert all(r.url.host == "ehr.example.org" for r in stub.requests)
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"          # refetched from the server itself


def test_an_incomplete_search_without_fhir_access_is_not_complete(evaluator):
    paged = bundle(medication_request("m1", text="metformin 500 mg"))
    paged["link"] = [{"relation": "next", "url": f"{SERVER}/MedicationRequest?page=2"}]
    assert _call(evaluator, _ehr(), prefetch=record(medicationRequests=paged), auth=None).status_code == 412


@pytest.mark.parametrize("server,used", [
    ("http://ehr.example.org/fhir", False),               # bearer tokens never travel in clear text
    ("http://127.0.0.1:9/fhir", True),                    # ... except to this machine
    ("https://user:pw@ehr.example.org/fhir", False),
    (SERVER, True),
])
def test_which_fhir_servers_get_the_token(evaluator, server, used):
    stub = _ehr()
    response = _call(evaluator, stub, server=server)
    assert bool(stub.requests) is used
    assert response.status_code == (200 if used else 412)


def test_fhir_server_allow_list(evaluator):
    settings = Settings(cds_fhir_servers="https://other.example.org/fhir")
    stub = _ehr()
    assert _call(evaluator, stub, settings=settings).status_code == 412 and stub.requests == []
    settings = Settings(cds_fhir_servers=f"{SERVER}, https://other.example.org/fhir")
    assert _call(evaluator, _ehr(), settings=settings).status_code == 200


def test_medication_references_are_fetched(evaluator):
    draft = {"resourceType": "MedicationRequest", "id": "ldn-ref", "status": "draft", "intent": "order",
             "medicationReference": {"reference": "Medication/med-7", "display": "compounded capsule"},
             "subject": {"reference": f"Patient/{PATIENT}"}}
    stub = _ehr(**{"/Medication/med-7": {"resourceType": "Medication", "id": "med-7",
                                          "code": {"text": "Naltrexone 4.5 mg capsule, compounded"}}})
    response = _call(evaluator, stub, drafts=[draft])
    assert cards_by_rule(response)[OPIOID]["indicator"] == "critical"
    assert stub.requests[0].url.path == "/fhir/Medication/med-7"


def test_the_spec_fhir_authorization_example_is_used_as_is(evaluator):
    stub = _ehr()
    auth = example("spec3-fhirAuthorization.json")["fhirAuthorization"]
    assert _call(evaluator, stub, auth=auth).status_code == 200
    assert stub.requests[0].headers["authorization"] == "Bearer some-opaque-fhir-access-token"


def test_irrelevant_orders_fetch_nothing(evaluator):
    stub = _ehr()
    amoxicillin = medication_request("amox", text="Acetaminophen 500 mg tablet", status="draft")
    response = _call(evaluator, stub, drafts=[amoxicillin])
    assert response.json() == {"cards": []} and stub.requests == []


def test_appointment_book_fetches_what_the_procedure_rules_need(evaluator):
    """The rules that concern a booking (core/scope.py) need the medication list and the procedure list: the
    service's prefetch has medications and ServiceRequests; kidney data is never fetched for a booking."""
    stub = _ehr(**{"/MedicationRequest": bundle(medication_request("l", text="LDN 4.5 mg capsule", dose_mg=4.5))})
    client = make_client(evaluator, transport=stub)
    body = hook_request("appointment-book", appointments=[appointment("a", "2026-03-10T08:00:00Z")],
                        patient=PATIENT, fhirServer=SERVER, fhirAuthorization=AUTH)
    response = post_hook(client, "ldn-appointment-book", body)
    assert {r.url.path for r in stub.requests} == {"/fhir/MedicationRequest", "/fhir/MedicationStatement",
                                                   "/fhir/ServiceRequest"}
    assert cards_by_rule(response)["ldn-perioperative-hold"]["indicator"] == "warning"


def test_neither_token_nor_patient_id_is_logged(evaluator, caplog):
    caplog.set_level(logging.DEBUG)
    stub = _ehr(**{"/Observation": httpx.Response(500)})
    _call(evaluator, stub)
    _call(evaluator, stub, prefetch={}, auth=None)                  # a 412
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')} {r.args}" for r in caplog.records)
    assert caplog.records                                          # something was logged ...
    assert TOKEN not in text and PATIENT not in text and "oxycodone" not in text.lower()   # ... but none of this


def test_prefetch_data_is_the_body_as_sent_and_equals_the_models_dump():
    last = {"id": "l", "status": "active", "resourceType": "MedicationRequest"}     # resourceType last
    prefetch = {"medicationRequests": bundle(oxycodone()), "patient": None, "last": last}
    request = OrderSignRequest.model_validate(hook_request("order-sign", drafts=[ldn_draft()], prefetch=prefetch))
    data = request.prefetch_data()
    assert data == {k: (v.model_dump() if v is not None else None) for k, v in request.prefetch.items()}
    assert data["medicationRequests"] is prefetch["medicationRequests"]              # read, not copied
    assert list(data["last"]) == ["resourceType", "id", "status"]                   # the dump's key order
    built = OrderSignRequest.model_validate(hook_request("order-sign", drafts=[ldn_draft()]))
    built.prefetch = {"patient": Resource(resourceType="Patient", id="p")}           # built in Python: dumped
    assert built.prefetch_data() == {"patient": {"resourceType": "Patient", "id": "p"}}
