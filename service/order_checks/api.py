"""POST /v1/order-checks: a pharmacy order plus the patient's profile in, a verdict a machine can act on out.

JSON by default; a FHIR R4 Bundle of DetectedIssue with `?format=fhir` or `Accept: application/fhir+json`.
The decision is the shared Evaluator's (service/core/decision.py); mapping.py says how the order becomes the
patient context, verdict.py which rules concern it and the verdict.
"""
from __future__ import annotations

import time
import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ..web.auth import Principal, require
from ..web.decision_log import record_decision
from ..web.dependencies import evaluator_of
from ..web.problems import error_responses
from .fhir import BUNDLE_SCHEMA, FHIR_JSON, bundle
from .mapping import plan
from .models import OrderCheckRequest, OrderCheckResponse
from .verdict import answer
from ..web.urls import base_url

router = APIRouter(prefix="/v1", tags=["order checks"])

_FHIR_200 = {200: {"description": "The verdict, the coded issues and what could not be checked. As FHIR: a Bundle "
                                  "of DetectedIssue (R4).",
                   "content": {FHIR_JSON: {"schema": BUNDLE_SCHEMA}}}}


def _wants_fhir(format_: str | None, accept: str | None) -> bool:
    if format_ is not None:
        return format_ == "fhir"
    return FHIR_JSON in (accept or "").lower()


@router.post("/order-checks", response_model=OrderCheckResponse,
             responses={**error_responses(400, 401, 403, 413, 422, 503), **_FHIR_200},
             summary="Check a pharmacy order (LDN, another naltrexone product, an opioid...) against the profile")
async def create_order_check(body: OrderCheckRequest, request: Request,
                       format_: Literal["json", "fhir"] | None = Query(
                           None, alias="format", description="fhir: answer with a FHIR R4 Bundle of DetectedIssue "
                                                             "(as does Accept: application/fhir+json). Default json."),
                       principal: Principal = Depends(require("order-check"))):
    # async, evaluating inline: CPU-bound work that the engine serialises with its own lock.
    started = time.perf_counter()
    ev = evaluator_of(request)
    order_plan = plan(body, ev.kb.terminology)
    decision = ev.evaluate(order_plan.context)
    response = answer(str(uuid.uuid4()), order_plan, decision, ev.kb.rules, body.order, ev.kb.coding_displays)
    record_decision(request, decision, id=response.order_check_id, channel="order-check", started=started,
                    outcome=response.verdict, detail={"order_category": order_plan.category})
    if _wants_fhir(format_, request.headers.get("accept")):
        order = body.order
        display = order.name or ", ".join(f"{c.system} {c.code}" for c in order.codes)
        return JSONResponse(bundle(response, display, base_url(request)), media_type=FHIR_JSON)
    return Response(response.model_dump_json(), media_type="application/json")
