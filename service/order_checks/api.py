"""POST /v1/order-checks: a pharmacy order plus the patient's profile in, a verdict a machine can act on out.

JSON by default; a FHIR R4 Bundle of DetectedIssue with `?format=fhir` or `Accept: application/fhir+json`.
The decision is the shared Evaluator's (service/decision.py); see service/order_checks.py for how the order
becomes the patient context and service/order_check_render.py for applicability and the verdict.
"""
from __future__ import annotations

import time
import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from ..web.auth import Principal, require
from .fhir import BUNDLE_SCHEMA, FHIR_JSON, bundle
from .verdict import answer_data
from ..web.metrics import count_decision
from .mapping import OrderCheckRequest, plan
from .coding import vocabulary_in
from ..web.common import evaluator_of, problems, record_decision
from .models import OrderCheckResponse

router = APIRouter(prefix="/v1", tags=["order checks"])

_FHIR_200 = {200: {"description": "The verdict, the coded issues and what could not be checked. As FHIR: a Bundle "
                                  "of DetectedIssue (R4).",
                   "content": {FHIR_JSON: {"schema": BUNDLE_SCHEMA}}}}


def _wants_fhir(format_: str | None, accept: str | None) -> bool:
    if format_ is not None:
        return format_ == "fhir"
    return FHIR_JSON in (accept or "").lower()


@router.post("/order-checks", response_model=OrderCheckResponse,
             responses={**problems(400, 401, 403, 413, 422, 503), **_FHIR_200},
             summary="Check a pharmacy order (LDN, another naltrexone product, an opioid...) against the profile")
async def create_order_check(body: OrderCheckRequest, request: Request,
                       format_: Literal["json", "fhir"] | None = Query(
                           None, alias="format", description="fhir: answer with a FHIR R4 Bundle of DetectedIssue "
                                                             "(as does Accept: application/fhir+json). Default json."),
                       principal: Principal = Depends(require("order-check"))):
    # async, evaluating inline: the evaluation is CPU-bound (no I/O) and the engine serialises evaluations with its
    # own lock, so the thread pool bought no parallelism under the GIL, only ~1 ms of hops per request.
    started = time.perf_counter()
    ev = evaluator_of(request)
    order_plan = plan(body, ev.kb.terminology)
    decision = ev.evaluate(order_plan.context)
    count_decision(decision)
    answer = answer_data(str(uuid.uuid4()), order_plan, decision, ev.kb.rules, body.order,
                         vocabulary_in(request.app.state.settings.schemas_dir))
    record_decision(request, decision, id=answer["order_check_id"], channel="order-check", started=started,
                    outcome=answer["verdict"], detail={"order_category": order_plan.category})
    if _wants_fhir(format_, request.headers.get("accept")):
        order = body.order
        display = order.name or ", ".join(f"{c.system} {c.code}" for c in order.codes)
        return JSONResponse(bundle(OrderCheckResponse.model_validate(answer), display), media_type=FHIR_JSON)
    # The declared OrderCheckResponse, sent as its plain data: the same bytes as the model's JSON (tested).
    return Response(to_json(answer), media_type="application/json")
