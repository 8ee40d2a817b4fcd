"""What the contract says to its readers beyond what the code implies: each operation's description and example
(service/web/operations.yaml), the tags, the servers and a contact. Applied by app.generated_openapi; Spectral's
`spectral:oas` ruleset runs on the result in make test (tests/web/test_openapi_doc.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

OPERATIONS = Path(__file__).resolve().parent / "operations.yaml"

TAGS = [
    {"name": "evaluations", "description": "A patient context checked against every active LDN rule."},
    {"name": "order checks", "description": "A pharmacy order checked against the patient's profile: a verdict, "
                                            "coded issues, JSON or FHIR R4 DetectedIssue."},
    {"name": "audit", "description": "Recorded decisions, read back and replayed (scope audit-read)."},
    {"name": "catalogue", "description": "The rules and their source documents as JSON. People read them as HTML "
                                         "pages, without credentials: /rules, /rules/{id}, /sources/{id}."},
    {"name": "cds-hooks", "description": "HL7 CDS Hooks 2.0: discovery, the four LDN services, feedback, override "
                                         "analytics."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics for probes and scrapers."},
]
SERVERS = [
    {"url": "/", "description": "The service that serves this contract (behind a proxy: its PUBLIC_BASE_URL)."},
    {"url": "http://127.0.0.1:8000", "description": "`make run` on this machine (the embedded default)."},
]
CONTACT = {"name": "LDN CDS team (the developers of this service)"}


def _examples() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(OPERATIONS.read_text(encoding="utf-8"))


def _annotate(operation: dict[str, Any], doc: dict[str, Any]) -> None:
    operation["description"] = " ".join(doc["description"].split())
    if "request" in doc:
        for media in operation["requestBody"]["content"].values():
            media["example"] = doc["request"]
    for parameter in operation.get("parameters", []):
        if parameter["name"] in doc.get("parameters", {}):
            parameter["example"] = doc["parameters"][parameter["name"]]
    ok = operation["responses"]["200"].setdefault("content", {})
    if "response" in doc:
        ok["application/json"]["example"] = doc["response"]
    if "response_text" in doc:
        ok["text/plain"]["example"] = doc["response_text"]


def annotate(openapi: dict[str, Any]) -> None:
    """Descriptions and examples into every documented operation (in place); tags, servers, contact. An operation
    with no entry in operations.yaml raises KeyError: `make openapi` fails until it is described."""
    docs = _examples()
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            _annotate(operation, docs[f"{method.upper()} {path}"])
    openapi["tags"] = TAGS
    openapi["servers"] = SERVERS
    openapi["info"]["contact"] = CONTACT
