"""Liveness and readiness."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from ..metrics import exposition
from ..problems import problem_response
from .common import problems
from .models import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problems(503),
            summary="Readiness: knowledge loaded and the engine answers")
def readyz(request: Request):
    ev = getattr(request.app.state, "evaluator", None)
    if ev is None:
        return problem_response(503, "Not ready", "The knowledge base is not loaded.")
    return Readiness(status="ready", knowledge_version=ev.kb.version, active_rules=len(ev.kb.active_rules))


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics() -> PlainTextResponse:
    body, content_type = exposition()
    return PlainTextResponse(body, media_type=content_type)
