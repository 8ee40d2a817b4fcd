"""POST /v1/evaluations: a patient context in, cited advisories out."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Depends, Request, Response

from ..web.auth import Principal, require
from ..core.context import PatientContext
from ..web.decision_log import record_decision
from ..web.dependencies import evaluator_of
from ..web.problems import error_responses
from .models import EvaluationResponse

router = APIRouter(prefix="/v1", tags=["evaluations"])


@router.post("/evaluations", response_model=EvaluationResponse, responses=error_responses(400, 401, 403, 413, 422, 503),
             summary="Evaluate a patient context against every active LDN rule")
async def create_evaluation(body: PatientContext, request: Request,
                            principal: Principal = Depends(require("evaluate"))) -> Response:
    # async, evaluating inline: CPU-bound work that the engine serialises with its own lock.
    started = time.perf_counter()
    decision = evaluator_of(request).evaluate(body)
    evaluation_id = str(uuid.uuid4())
    record_decision(request, decision, id=evaluation_id, channel="evaluation", started=started,
                    patient_id=body.patient.id if body.patient else None,
                    outcome=decision.highest_severity or "no-advisory")
    return Response(EvaluationResponse.of(evaluation_id, decision).model_dump_json(), media_type="application/json")
