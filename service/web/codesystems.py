"""The code systems this service owns, served as FHIR R4 CodeSystem resources where their URLs point.

    GET /codesystems/rules                the rules (card source.topic, DetectedIssue references): code = rule id
    GET /codesystems/card-topics          topics of cards that are not a rule's advice ("not-evaluated")
    GET /codesystems/order-check-verdict  the order-check verdict (Bundle.meta.tag of the FHIR answer)
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from ..knowledge.base import KnowledgeBase
from .urls import base_url, code_system_url

FHIR_JSON = "application/fhir+json"
RULES, CARD_TOPICS, VERDICT = "rules", "card-topics", "order-check-verdict"
NOT_EVALUATED = ("not-evaluated", "Checks not run for lack of data")
VERDICT_DISPLAY = {"stop": "Stop: do not dispense as ordered", "review": "Review by a pharmacist before dispensing",
                   "pass": "Pass: no issue found by the applicable rules"}
_TITLES = {RULES: "LDN decision support rules", CARD_TOPICS: "LDN decision support card topics",
           VERDICT: "LDN order-check verdict"}

router = APIRouter(tags=["catalogue"])


def concepts(name: str, kb: KnowledgeBase) -> list[tuple[str, str]] | None:
    if name == RULES:
        return [(r.id, r.title) for r in sorted(kb.rules.values(), key=lambda r: r.id)]
    if name == CARD_TOPICS:
        return [NOT_EVALUATED]
    if name == VERDICT:
        return list(VERDICT_DISPLAY.items())
    return None


def code_system(name: str, base: str, kb: KnowledgeBase) -> dict[str, Any] | None:
    found = concepts(name, kb)
    if found is None:
        return None
    return {"resourceType": "CodeSystem", "id": name, "url": code_system_url(base, name), "version": kb.version,
            "name": "".join(w.capitalize() for w in name.split("-")), "title": _TITLES[name], "status": "active",
            "content": "complete", "caseSensitive": True, "count": len(found),
            "concept": [{"code": code, "display": display} for code, display in found]}


@router.get("/codesystems/{name}", summary="A code system this service owns, as a FHIR R4 CodeSystem",
            responses={200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}, 404: {"description": "No such code system"}})
async def get_code_system(name: str, request: Request) -> JSONResponse:
    resource = code_system(name, base_url(request), request.app.state.evaluator.kb)
    if resource is None:
        raise HTTPException(404, "no code system with this name")
    return JSONResponse(resource, media_type=FHIR_JSON)
