"""POST /v1/evaluations: a patient context in, cited advisories out."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from ..auth import Principal, require
from ..context import PatientContext
from ..decision import Evaluator
from ..metrics import count_decision
from .common import evaluator, problems
from .models import EvaluationResponse

router = APIRouter(prefix="/v1", tags=["evaluations"])


@router.post("/evaluations", response_model=EvaluationResponse, responses=problems(400, 401, 403, 413, 422, 503),
             summary="Evaluate a patient context against every active LDN rule")
def create_evaluation(body: PatientContext, ev: Evaluator = Depends(evaluator),
                      principal: Principal = Depends(require("evaluate"))) -> EvaluationResponse:
    # A plain def: FastAPI runs it in its thread pool; the engine serialises evaluations with its own lock.
    decision = ev.evaluate(body)
    count_decision(decision)
    return EvaluationResponse.of(str(uuid.uuid4()), decision)
