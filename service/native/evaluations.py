"""POST /v1/evaluations: a patient context in, cited advisories out."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Depends, Request, Response
from pydantic_core import to_json

from ..web.auth import Principal, require
from ..core.context import PatientContext
from ..web.metrics import count_decision
from ..web.common import evaluator_of, problems, record_decision
from .models import EvaluationResponse

router = APIRouter(prefix="/v1", tags=["evaluations"])


@router.post("/evaluations", response_model=EvaluationResponse, responses=problems(400, 401, 403, 413, 422, 503),
             summary="Evaluate a patient context against every active LDN rule")
async def create_evaluation(body: PatientContext, request: Request,
                            principal: Principal = Depends(require("evaluate"))) -> Response:
    # async, evaluating inline: the evaluation is CPU-bound (no I/O) and the engine serialises evaluations with its
    # own lock, so the thread pool bought no parallelism under the GIL, only ~1 ms of hops per request.
    started = time.perf_counter()
    decision = evaluator_of(request).evaluate(body)
    count_decision(decision)
    evaluation_id = str(uuid.uuid4())
    record_decision(request, decision, id=evaluation_id, channel="evaluation", started=started,
                    patient_id=body.patient.id if body.patient else None,
                    outcome=decision.highest_severity or "no-advisory")
    # The declared EvaluationResponse, sent as its plain data: the same bytes as the model's JSON
    # (tests/test_api_evaluations.py), without building and re-validating a model per advisory.
    return Response(to_json(EvaluationResponse.data(evaluation_id, decision)), media_type="application/json")
