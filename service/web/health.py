"""Liveness and readiness."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from .metrics import exposition
from .problems import error_responses, problem_response

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]


class Dropped(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audit: int = Field(description="Audit records this worker could not write (store down, hung or queue full).")
    cds_store: int = Field(description="CDS Hooks issued-card and feedback writes this worker could not make.")


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ready", "degraded"]
    audit: Literal["ok", "unavailable"]
    cds_store: Literal["ok", "unavailable"] = Field(
        description="The writer of CDS Hooks issued cards and feedback (the same database as the audit trail).")
    dropped: Dropped | None = Field(None, description="What this worker lost so far (also in /metrics).")
    knowledge_version: str
    active_rules: int


# Every probe is async: it runs on the event loop and never queues in the thread pool behind request work,
# and none of them touches the database (the writers' health flags say how the store is doing).
@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=error_responses(503),
            summary="Readiness: knowledge loaded and the engine answers")
async def readyz(request: Request):
    drain = getattr(request.app.state, "drain", None)
    if drain is not None and drain.draining:     # shutting down: the load balancer stops sending first
        return problem_response(503, "Draining", "This worker is shutting down; send requests elsewhere.")
    ev = getattr(request.app.state, "evaluator", None)
    if ev is None:
        return problem_response(503, "Not ready", "The knowledge base is not loaded.")
    ev.engine.evaluate({})   # the engine answers (an EngineError becomes a 503 problem)
    auditor = getattr(request.app.state, "auditor", None)
    audit_ok = auditor is None or auditor.healthy
    cds_ok = auditor is None or auditor.cds_healthy
    # Degraded still answers 200: advice keeps flowing while the store is down (the loss is counted).
    return Readiness(status="ready" if audit_ok and cds_ok else "degraded", audit="ok" if audit_ok else "unavailable",
                     cds_store="ok" if cds_ok else "unavailable",
                     dropped=Dropped(**auditor.dropped()) if auditor is not None else None,
                     knowledge_version=ev.kb.version, active_rules=len(ev.kb.active_rules))


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics() -> PlainTextResponse:
    body, content_type = exposition()
    return PlainTextResponse(body, media_type=content_type)
