"""Errors under /cds-services are FHIR OperationOutcomes (application/fhir+json, valid R4), as the 3.0 ballot
asks for every non-2xx answer; the 412 names the real cause. /v1 keeps RFC 9457 problem+json."""
from __future__ import annotations

import pytest

from service.settings import Settings

from ..r4 import r4_problems
from .support import hook_request, ldn_draft, make_client

SIGN = "/cds-services/ldn-order-sign"


@pytest.fixture(scope="module")
def client(evaluator):
    return make_client(evaluator, Settings(max_body_bytes=4096))


def _outcome(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    assert r4_problems([body]) == []
    return body


def test_the_errors_of_the_cds_services(client):
    bodies = {
        400: client.post(SIGN, content=b"{not json", headers={"content-type": "application/json"}),
        404: client.post("/cds-services/no-such-service", json={}),
        405: client.get(SIGN),
        413: client.post(SIGN, content=b"x" * 5000, headers={"content-type": "application/json"}),
        422: client.post(SIGN, json={**hook_request("order-sign", drafts=[ldn_draft()]), "hook": "patient-view"}),
    }
    codes = {status: _outcome(response, status)["issue"][0]["code"] for status, response in bodies.items()}
    assert codes == {400: "structure", 404: "not-found", 405: "not-supported", 413: "too-costly", 422: "invalid"}
    assert "hook" in _outcome(bodies[422], 422)["issue"][0]["expression"]
    _outcome(client.post("/cds-services/nope/feedback", json={"feedback": []}), 404)


def test_v1_errors_stay_problem_json(client):
    response = client.post("/v1/evaluations", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("server,cause", [
    ("http://fhir.hospital.example/r4", "fhirServer must be https"),
    (None, "the request carries no fhirServer"),
])
def test_the_412_names_the_real_cause(client, server, cause):
    body = hook_request("order-sign", drafts=[ldn_draft()], fhirAuthorization={
        "access_token": "secret-token", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
        "subject": "ldn-cds"})
    if server:
        body["fhirServer"] = server
    outcome = _outcome(client.post(SIGN, json=body), 412)
    (issue,) = outcome["issue"]
    assert cause in issue["details"]["text"] and cause in issue["diagnostics"]
    assert "are needed" not in issue["diagnostics"]
    assert "secret-token" not in str(outcome)
