"""An order-check answer as FHIR R4: a Bundle (type collection) of DetectedIssue, plus one OperationOutcome.

Each issue concerning the order becomes a DetectedIssue: status final; severity high | moderate | low from critical |
warning | info; code the v3 ActCode detected-issue code; detail the summary, the detail and the recommended action;
evidence the inputs that triggered it; implicated the ordered medication and the profile medications it conflicts
with (display-only references); identified = as_of; author the service, as a display-only Device reference;
reference the rule in the catalogue. A suggested mitigation (v3 ActCode, e.g. 12 Temporarily Suspended Concurrent
Therapy) goes into mitigation.action without date or author: R4 says mitigation records an action taken or
committed to, so its text says it is a suggestion, not yet taken.

The OperationOutcome carries what the DetectedIssues cannot: the verdict and its reasons, the rules that could not
be evaluated and what was not recognised, so a FHIR client is not left to read an empty bundle as an all-clear.
The verdict is also a Bundle.meta.tag. Only elements that exist in R4 (4.0.1) are used (tests/test_order_checks.py
checks both).
"""
from __future__ import annotations

import uuid
from typing import Any

from ..core.ids import uuid5
from .models import OrderCheckResponse, OrderIssueOut
from ..web.codesystems import VERDICT, VERDICT_DISPLAY
from ..web.urls import CODE_SYSTEMS_PATH, code_system_url, rule_page

FHIR_JSON = "application/fhir+json"
SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}   # FHIR's own DetectedIssue severity codes
_OUTCOME_NS = uuid.UUID("0b7f3c52-8f0e-4a43-9d55-2d6f9a0f1c3e")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items() if v not in (None, [], {}))
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _evidence(issue: OrderIssueOut) -> list[dict[str, Any]]:
    out = []
    for key, value in issue.evidence.items():
        items = value if isinstance(value, list) else [value]
        out.extend({"code": [{"text": f"{key}: {_text(item)}"}]} for item in items if item not in (None, {}))
    return out


def _implicated(issue: OrderIssueOut, order_display: str, order_is_ldn: bool) -> list[dict[str, Any]]:
    """The ordered medication, then the profile's products the issue names (the opioids, the other naltrexone
    products) and, for an order that is not LDN, the profile's LDN."""
    names = [order_display]
    for value in issue.evidence.values():
        for item in value if isinstance(value, list) else ():
            name = item.get("name") if isinstance(item, dict) else None
            if name and name not in names:
                names.append(name)
    if not order_is_ldn and "ldn" in issue.evidence:
        names.append("low-dose naltrexone (LDN), from the patient's profile")
    return [{"display": n} for n in names]


def detected_issue(issue: OrderIssueOut, answer: OrderCheckResponse, order_display: str,
                   base: str) -> dict[str, Any]:
    code = issue.detected_issue_code
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": issue.id,
        "status": "final",
        "code": {"coding": [{"system": code.system, "code": code.code, "display": code.display}],
                 "text": issue.title},
        "severity": SEVERITY[issue.severity],
        "identifiedDateTime": answer.as_of.isoformat(),
        "author": {"type": "Device", "display": f"LDN decision support, knowledge {answer.knowledge_version}"},
        "implicated": _implicated(issue, order_display, answer.order.category == "ldn"),
        "detail": f"{issue.summary} {issue.detail} Recommended action: {issue.action}",
        "reference": rule_page(base, issue.rule_id),    # absolute: the rule's page, where a person reads its basis
    }
    evidence = _evidence(issue)
    if evidence:
        resource["evidence"] = evidence
    if issue.suggested_mitigation:
        m = issue.suggested_mitigation
        resource["mitigation"] = [{"action": {
            "coding": [{"system": m.system, "code": m.code, "display": m.display}],
            "text": f"Suggested, not yet taken: {issue.action}"}}]
    return resource


def operation_outcome(answer: OrderCheckResponse) -> dict[str, Any]:
    issues = [{"severity": "information", "code": "informational",
               "diagnostics": f"verdict {answer.verdict}: {r}"} for r in answer.verdict_reasons]
    issues += [{"severity": "warning" if n.severity != "info" else "information", "code": "incomplete",
                "diagnostics": f"{n.rule_id} not evaluated: {n.reason}"} for n in answer.not_evaluated]
    issues += [{"severity": "warning", "code": "not-found", "diagnostics": f"medication not recognised: {u.field}"}
               for u in answer.unrecognized]
    issues += [{"severity": "warning", "code": "code-invalid",
                "diagnostics": f"code not recognised: {c.field} ({c.system} {c.code})"}
               for c in answer.unrecognized_codes]
    return {"resourceType": "OperationOutcome", "id": uuid5(_OUTCOME_NS, answer.order_check_id),
            "issue": issues}


def bundle(answer: OrderCheckResponse, order_display: str, base: str) -> dict[str, Any]:
    """base: the service's external base URL (service.web.urls.base_url)."""
    resources = [detected_issue(i, answer, order_display, base) for i in answer.issues]
    resources.append(operation_outcome(answer))
    return {
        "resourceType": "Bundle",
        "id": answer.order_check_id,
        "meta": {"tag": [{"system": code_system_url(base, VERDICT), "code": answer.verdict,
                          "display": VERDICT_DISPLAY[answer.verdict]}]},
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


# Documented in the OpenAPI contract as the application/fhir+json body of a 200 answer.
BUNDLE_SCHEMA: dict[str, Any] = {
    "title": "FhirDetectedIssueBundle",
    "description": "FHIR R4 Bundle (type collection): one DetectedIssue per issue concerning the order, then one "
                   "OperationOutcome with the verdict, the rules not evaluated and what was not recognised. The "
                   "verdict is also in Bundle.meta.tag (system {PUBLIC_BASE_URL}" + CODE_SYSTEMS_PATH + "/" + VERDICT
                   + ", served there as a FHIR CodeSystem).",
    "type": "object",
    "required": ["resourceType", "id", "type", "entry"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "id": {"type": "string"},
        "meta": {"type": "object"},
        "type": {"const": "collection"},
        "entry": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["fullUrl", "resource"],
            "properties": {"fullUrl": {"type": "string"},
                           "resource": {"type": "object", "required": ["resourceType", "id"], "properties": {
                               "resourceType": {"enum": ["DetectedIssue", "OperationOutcome"]},
                               "id": {"type": "string"}}}}}},
    },
}
