"""Shared by the CDS Hooks tests: an app with a fixed evaluation date, no network, an in-memory feedback store;
FHIR resource builders; the example directory."""
from __future__ import annotations

import copy
import datetime as dt
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
from fastapi.testclient import TestClient

from service.app import create_app
from service.cds_hooks.api import evaluation_date
from service.settings import Settings

from .validator import validate_response
from ..conftest import FIXED_TODAY, SHARED

EXAMPLES = SHARED / "cds-hooks-examples"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OXYCODONE_5MG = "1049621"          # RxNorm: oxycodone hydrochloride 5 MG Oral Tablet (a code of the opioid value set)
NO_CONTRACT = Path("/nonexistent/openapi.yaml")
EVERY_KEY = ("patient", "medicationRequests", "medicationStatements", "egfr", "conditions", "appointments",
             "procedures", "serviceRequests")


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


class NoNetwork(httpx.MockTransport):
    """Any outbound request is recorded and answered 599: tests assert that nothing was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(599)


class FhirStub(httpx.MockTransport):
    """A FHIR server on no network: routes (path + sorted query) -> JSON; records every request it gets."""

    def __init__(self, routes: dict[str, Any] | Callable[[httpx.Request], httpx.Response]):
        self.requests: list[httpx.Request] = []
        self.routes = routes
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if callable(self.routes):
            return self.routes(request)
        for prefix, body in self.routes.items():
            if request.url.path.endswith(prefix.split("?")[0]) and (
                    "?" not in prefix or prefix.split("?")[1] in str(request.url.query, "ascii")):
                if isinstance(body, httpx.Response):
                    return body
                return httpx.Response(200, json=body)
        return httpx.Response(404, json={"resourceType": "OperationOutcome",
                                         "issue": [{"severity": "error", "code": "not-found"}]})


def make_client(evaluator, settings: Settings | None = None, today: dt.date = FIXED_TODAY,
                transport: httpx.AsyncBaseTransport | None = None, base_url: str = "http://testserver") -> TestClient:
    # The served contract is tested in test_contract; parsing openapi.yaml per app would dominate these tests.
    settings = settings or Settings(database_url=f"sqlite:///{tempfile.mkdtemp(prefix='ldn-test-cds-')}/audit.db")
    settings = settings.model_copy(update={"contract_path": NO_CONTRACT})   # each client: a database of its own
    app = create_app(settings, evaluator=evaluator)
    app.dependency_overrides[evaluation_date] = lambda: today
    app.state.cds_http_transport = transport if transport is not None else NoNetwork()
    return TestClient(app, base_url=base_url)


def bundle(*resources: dict[str, Any], type_: str | None = "searchset") -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if type_:
        b["type"] = type_
    return b


def medication_request(id_: str, *, text: str | None = None, rxnorm: str | None = None, status: str = "active",
                       dose_mg: float | None = None, when: str | None = None, patient: str = "pat-1",
                       authored: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if text:
        concept["text"] = text
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm}]
    r: dict[str, Any] = {"resourceType": "MedicationRequest", "id": id_, "status": status, "intent": "order",
                         "medicationCodeableConcept": concept, "subject": {"reference": f"Patient/{patient}"}}
    if dose_mg is not None or when:
        dosage: dict[str, Any] = {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
        if when:
            dosage["timing"]["repeat"]["when"] = [when]
        if dose_mg is not None:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": dose_mg, "unit": "mg",
                                                       "system": "http://unitsofmeasure.org", "code": "mg"}}]
        r["dosageInstruction"] = [dosage]
    if authored:
        r["authoredOn"] = authored
    return r


def ldn_draft(id_: str = "ldn-draft-1", dose_mg: float = 4.5, status: str = "draft", **kw: Any) -> dict[str, Any]:
    return medication_request(id_, text="Naltrexone 4.5 mg capsule (compounded)", status=status, dose_mg=dose_mg,
                              when="HS", **kw)


def oxycodone(id_: str = "oxy-1", status: str = "active") -> dict[str, Any]:
    return medication_request(id_, rxnorm=OXYCODONE_5MG, status=status)


def egfr(value: float, date: str = "2026-02-01", code: str = "98979-8") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": date,
            "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}", "system": "http://unitsofmeasure.org",
                              "code": "mL/min/{1.73_m2}"}}


def appointment(id_: str, start: str, text: str = "Total knee replacement", status: str = "booked",
                **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Appointment", "id": id_, "status": status, "serviceType": [{"text": text}],
            "start": start, "participant": [{"actor": {"reference": "Patient/pat-1"}, "status": "accepted"}],
            **extra}


def record(**values: Any) -> dict[str, Any]:
    """A complete prefetch: every key of ours, null (no data) unless given."""
    out: dict[str, Any] = {k: None for k in EVERY_KEY}
    out.update(values)
    return out


def hook_request(hook: str, *, drafts: list[dict[str, Any]] | None = None,
                 appointments: list[dict[str, Any]] | None = None, prefetch: dict[str, Any] | None = None,
                 patient: str = "pat-1", **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": patient}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = bundle(*(drafts or []), type_="collection")
    if hook == "appointment-book":
        context["appointments"] = bundle(*(appointments or []), type_="collection")
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(extra)
    return body


def post_hook(client: TestClient, service_id: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    """POST and check every 200 answer against the checklist's invariants (strict, ours)."""
    response = client.post(f"/cds-services/{service_id}", json=body, **kw)
    if response.status_code == 200:
        problems = validate_response(response.json(), ours=True)
        assert problems == [], problems
    return response


def cards_by_rule(response: httpx.Response) -> dict[str, dict[str, Any]]:
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


def deep(value: Any) -> Any:
    return copy.deepcopy(value)



def error_fields(response: httpx.Response) -> set[str]:
    """The fields an error under /cds-services names (its OperationOutcome's issue expressions)."""
    assert response.headers["content-type"] == "application/fhir+json", response.text
    return {e for issue in response.json()["issue"] for e in issue.get("expression") or []}
