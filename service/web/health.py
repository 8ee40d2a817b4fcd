"""Liveness and readiness."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from .metrics import exposition
from .problems import error_responses, problem_response

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ready", "degraded"]
    audit: Literal["ok", "unavailable"]
    knowledge_version: str
    active_rules: int


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=error_responses(503),
            summary="Readiness: knowledge loaded and the engine answers")
def readyz(request: Request):
    ev = getattr(request.app.state, "evaluator", None)
    if ev is None:
        return problem_response(503, "Not ready", "The knowledge base is not loaded.")
    ev.engine.evaluate({})   # the engine answers (an EngineError becomes a 503 problem)
    auditor = getattr(request.app.state, "auditor", None)
    audit_ok = auditor is None or auditor.healthy
    # Degraded still answers 200: advice keeps flowing while the audit store is down (the loss is counted).
    return Readiness(status="ready" if audit_ok else "degraded", audit="ok" if audit_ok else "unavailable",
                     knowledge_version=ev.kb.version, active_rules=len(ev.kb.active_rules))


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> PlainTextResponse:
    body, content_type = exposition()
    return PlainTextResponse(body, media_type=content_type)
