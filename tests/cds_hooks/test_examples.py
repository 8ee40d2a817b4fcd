"""Every file in ../shared/cds-hooks-examples/, by name: each request is accepted or refused as it should be; the
example responses and discovery documents exercise the validator; our own discovery passes it strictly.

Context-only examples (the hook library's and the spec's fragments) are sent as a full request: the hook named
by the file, a fresh hookInstance, and a prefetch in which every key of ours is null (the client had no data).
"""
from __future__ import annotations

import uuid

import pytest

from service.cds_hooks.models import OperationOutcome
from service.cds_hooks.services import SERVICE_IDS

from .support import EVERY_KEY, EXAMPLES, NoNetwork, error_fields, example, make_client, post_hook
from .validator import validate_discovery, validate_response, validate_template

SERVICE = {"order-select": "ldn-order-select", "order-sign": "ldn-order-sign",
           "appointment-book": "ldn-appointment-book", "patient-view": "ldn-patient-view",
           # deprecated in favour of order-select/order-sign: not offered, so a client would not call it; sent to
           # the order-sign service it is refused (hook name and context do not match)
           "medication-prescribe": "ldn-order-sign"}

# file -> (kind, hook for context fragments, expected status, fields a refusal must name, why)
REQUESTS = {
    "crd-request-appointment-book-r4.json": (
        "request", None, 200, (),
        "Da Vinci CRD R4 appointment-book with extension: accepted. The appointment has no date and no surgical "
        "code, so there is nothing to hold ({\"cards\": []}); its fhirServer is plain http on a public host, so "
        "its token is not used."),
    "crd-request-order-sign-servicerequest-r4.json": (
        "request", None, 200, (),
        "Da Vinci CRD order-sign with ServiceRequests (mammography, oxygen), foreign prefetch keys (some null) "
        "and extension: accepted, nothing LDN-related is ordered."),
    "spec3-request-order-sign-medicationrequest-paginated-prefetch.json": (
        "request", None, 200, (),
        "Spec order-sign whose prefetch is a paginated searchset under a key of another service: accepted; an "
        "amoxicillin draft needs no patient data here, so the missing pages do not matter."),
    "spec3-request-patient-view.json": (
        "request", None, 412, (),
        "Spec patient-view: well formed, but our prefetch keys are absent and fhirServer is plain http on a "
        "public host (the bearer token is never sent in clear text), so the medication list cannot be had: 412 "
        "with an OperationOutcome, as the spec requires."),
    "spec3-request-with-extension.json": (
        "request", None, 422, ("context.patientId",),
        "Spec fragment showing `extension`: its context has no patientId, which patient-view REQUIRES (the "
        "extension itself is accepted: see test_extension_is_accepted_and_ignored)."),
    "legacy-opioidcds-order-sign-draftOrders-not-bundle.json": (
        "request", None, 422, ("context.patientId", "context.draftOrders.resourceType"),
        "Pre-1.0 shape (opioid-cds): draftOrders is a bare MedicationRequest, patientId is a reference "
        "(Patient/...), prefetch values are {response, resource} wrappers: a clear 422 naming the fields."),
    "legacy-opioidcds-order-sign-fentanyl-bundle.json": (
        "request", None, 422, ("context.patientId", "prefetch.item1.resourceType"),
        "Pre-1.0 shape: the Bundle without type would be fine, but patientId is a reference and the prefetch "
        "values are {response, resource} wrappers, not FHIR resources: 422."),
    "library-order-select-context-r4.json": ("context", "order-select", 200, (), "R4 order-select: amoxicillin "
                                             "and a diet selected: nothing to check."),
    "library-order-select-context-stu3.json": ("context", "order-select", 200, (), "STU3 shapes read leniently."),
    "library-order-select-context-dstu2.json": ("context", "order-select", 200, (), "DSTU2 MedicationOrder read "
                                                "like MedicationRequest."),
    "library-order-sign-context-r4.json": ("context", "order-sign", 200, (), "R4 order-sign: nothing to check."),
    "library-order-sign-context-stu3.json": ("context", "order-sign", 200, (), "STU3: accepted."),
    "library-order-sign-context-dstu2.json": ("context", "order-sign", 200, (), "DSTU2: accepted."),
    "library-patient-view-context-a.json": ("context", "patient-view", 200, (), "PractitionerRole user."),
    "library-patient-view-context-b.json": ("context", "patient-view", 200, (), "With an encounterId."),
    "library-appointment-book-context-stu3.json": (
        "context", "appointment-book", 422, ("context.appointments.entry[0].resource.end",),
        "The library's only appointment-book example is STU3 and defective: `end` "
        "\"2019-08-10T09:10:00:00-06:00\" is not a dateTime. Appointment dates are what the perioperative hold "
        "is computed from, so an unreadable one is refused (422 naming the field) rather than dropped."),
    "library-medication-prescribe-context-stu3.json": (
        "context", "medication-prescribe", 422, ("hook", "context.draftOrders"),
        "medication-prescribe is deprecated (order-select/order-sign replace it) and not in our discovery: sent "
        "to the order-sign service it is refused, the hook and the context's Bundle name being wrong."),
    "spec3-context-order-sign-two-medicationrequests-medicationReference.json": (
        "context", "order-sign", 200, (),
        "Epic-style medicationReference with display only, unresolvable (no FHIR access): the displays are read "
        "(dextromethorphan is not an opioid, mercaptopurine is not relevant)."),
}
RESPONSES = {   # example response -> the problems our validator must find in it (spec rules, not ours)
    "spec3-response-empty.json": [],
    "spec3-response-systemActions.json": [],
    "spec3-response-cards-links-overrideReasons.json": [],
    "spec3-response-autolaunchable.json": ["$.cards[0].indicator: required, one of ['critical', 'info', 'warning']"],
    "crd-response-cards-systemActions.json": [],
    "crd-response-medication-cards.json": [],
}
DISCOVERY = {   # example discovery document -> problems under the spec's rules
    "spec3-discovery-response.json": [],
    "spec3-discovery-with-extension.json": [],
    "sandbox-services-discovery.json": [],
    "crd-discovery-advanced-prefetch.json": [],
}
OTHER = {   # used by the other CDS Hooks test modules (named there)
    "spec3-feedback-accepted.json": "test_cds_hooks_feedback",
    "spec3-feedback-overridden-no-reason.json": "test_cds_hooks_feedback",
    "spec3-feedback-overridden-with-reason.json": "test_cds_hooks_feedback",
    "spec3-jwt-example-ES384.txt": "test_cds_hooks_security",
    "spec3-jwt-header.json": "test_cds_hooks_security",
    "spec3-jwt-payload.json": "test_cds_hooks_security",
    "spec3-jwks-public.json": "test_cds_hooks_security",
    "spec3-jwk-private-EXAMPLE-ONLY.json": "test_cds_hooks_security",
    "sandbox-jwk-keypair-PUBLIC-TEST-KEY.json": "test_cds_hooks_security",
    "sandbox-jwks-public.json": "test_cds_hooks_security",
    "spec3-fhirAuthorization.json": "test_cds_hooks_prefetch",
    "spec3-prefetch-data-example.json": "here: test_prefetch_data_example_is_accepted",
    "spec3-prefetch-templates-basic.json": "here: test_prefetch_template_examples",
    "spec3-prefetch-templates-fhirpath-meds-appointments.json": "here: test_prefetch_template_examples",
    "spec3-error-412-operationoutcome.json": "here: test_412_example_has_our_operation_outcome_shape",
}


@pytest.fixture(scope="module")
def client(evaluator):
    return make_client(evaluator)


def test_every_example_file_is_classified():
    files = {p.name for p in EXAMPLES.iterdir()} - {"README.md", "MANIFEST.json"}
    assert files == set(REQUESTS) | set(RESPONSES) | set(DISCOVERY) | set(OTHER)
    assert {m["file"] for m in example("MANIFEST.json")} <= files


def _body(name: str) -> tuple[str, dict]:
    kind, hook, *_ = REQUESTS[name]
    doc = example(name)
    if kind == "request":
        return SERVICE[doc["hook"]], doc
    return SERVICE[hook], {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": doc["context"],
                           "prefetch": {k: None for k in EVERY_KEY}}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_example(client, name):
    service_id, body = _body(name)
    _, _, status, fields, why = REQUESTS[name]
    response = post_hook(client, service_id, body)
    assert response.status_code == status, (why, response.text)
    if status == 200:
        assert response.json() == {"cards": []}, why
    elif status == 412:
        outcome = response.json()
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["diagnostics"].startswith("CDS Hooks prefetch key 'medicationRequests'")
    else:
        named = error_fields(response)
        assert set(fields) <= named, (why, named)
    assert client.app.state.cds_http_transport.requests == []      # nothing was fetched from anywhere


def test_extension_is_accepted_and_ignored(client):
    body = example("spec3-request-with-extension.json")
    body["context"]["patientId"] = "1288992"
    body["prefetch"] = {"medicationRequests": None}
    response = post_hook(client, "ldn-patient-view", body)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_fhir_authorization_null_is_accepted(client):
    body = example("spec3-request-order-sign-medicationrequest-paginated-prefetch.json")
    body["fhirAuthorization"] = None
    assert post_hook(client, "ldn-order-sign", body).json() == {"cards": []}


def test_prefetch_data_example_is_accepted(client):
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/example", "patientId": "1288992"},
            "prefetch": {**example("spec3-prefetch-data-example.json")["prefetch"], "medicationRequests": None}}
    assert post_hook(client, "ldn-patient-view", body).json() == {"cards": []}


def test_hook_name_must_match_the_service(client):
    body = example("crd-request-appointment-book-r4.json")
    response = client.post("/cds-services/ldn-order-sign", json=body)
    assert response.status_code == 422
    assert "hook" in error_fields(response)


def test_unknown_service_is_404(client):
    assert client.post("/cds-services/no-such-service", json=example("spec3-request-patient-view.json")
                       ).status_code in (404, 405)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_examples_exercise_the_validator(name):
    assert validate_response(example(name), ours=False) == RESPONSES[name]
    # Our stricter rules reject what the spec allows us to leave out (a card without uuid gets no feedback).
    if name == "spec3-response-cards-links-overrideReasons.json":
        assert "$.cards[1].uuid: required" in validate_response(example(name), ours=True)


def test_validator_catches_what_the_checklist_forbids():
    card = {"uuid": "a", "summary": "x" * 140, "indicator": "hard-stop", "source": {"label": "", "url": "/rel"},
            "suggestions": [{"label": "s", "uuid": "a", "actions": [{"type": "delete"}]}],
            "overrideReasons": [{"system": "s", "code": "c"}], "detail": None}
    problems = validate_response({"cards": [card], "systemActions": []}, ours=True)
    for expected in ("summary: 140 characters", "indicator", "source.label", "source.url: must be an absolute",
                     "selectionBehavior: required", "description: required", "overrideReasons[0].display",
                     "$.systemActions: empty value", "$.cards[0].detail: empty value", "uuids must be unique",
                     "resourceId: SHOULD"):
        assert any(expected in p for p in problems), (expected, problems)


@pytest.mark.parametrize("name", sorted(DISCOVERY))
def test_discovery_examples_exercise_the_validator(name):
    assert validate_discovery(example(name), ours=False) == DISCOVERY[name]


def test_the_crd_discovery_uses_3_0_tokens_we_do_not():
    problems = validate_discovery(example("crd-discovery-advanced-prefetch.json"), ours=True)
    assert any("is not a CDS Hooks 2.0 token" in p for p in problems)


def test_our_discovery(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.json()
    assert validate_discovery(body, ours=True) == []
    assert {(s["id"], s["hook"]) for s in body["services"]} == {
        ("ldn-order-select", "order-select"), ("ldn-order-sign", "order-sign"),
        ("ldn-appointment-book", "appointment-book"), ("ldn-patient-view", "patient-view")}
    order = next(s for s in body["services"] if s["id"] == "ldn-order-sign")
    assert order["prefetch"]["medicationRequests"] == "MedicationRequest?patient={{context.patientId}}&status=active"
    assert "http://loinc.org|98979-8" in order["prefetch"]["egfr"]
    assert set(order["prefetch"]) == {"patient", "medicationRequests", "medicationStatements", "egfr", "conditions",
                                      "appointments", "procedures", "serviceRequests"}
    assert SERVICE_IDS == {s["id"] for s in body["services"]}


def test_prefetch_template_examples():
    basic = example("spec3-prefetch-templates-basic.json")["prefetch"]
    assert [p for k, t in basic.items() for p in validate_template(t, k)] == []
    fhirpath = example("spec3-prefetch-templates-fhirpath-meds-appointments.json")["prefetch"]
    assert all(validate_template(t, k) for k, t in fhirpath.items())     # every one uses 3.0 tokens


def test_412_example_has_our_operation_outcome_shape():
    OperationOutcome.model_validate(example("spec3-error-412-operationoutcome.json"))


def test_no_network_guard_is_in_place(client):
    assert isinstance(client.app.state.cds_http_transport, NoNetwork)
