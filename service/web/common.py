"""What the routers share: the evaluator of this process and the documented error responses."""
from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from fastapi import Request

from ..audit.record import AuditRecord, Channel, record_of
from ..core.decision import Decision, Evaluator
from .telemetry import request_id_var
from .problems import PROBLEM_JSON, Problem


def evaluator_of(request: Request) -> Evaluator:
    """This process's evaluator. The hot endpoints call this rather than depend on `evaluator`: FastAPI spends
    ~40 us resolving a dependency, on a request whose own work is a few hundred."""
    return request.app.state.evaluator


async def evaluator(request: Request) -> Evaluator:
    # async: an attribute read needs no trip through the thread pool.
    return evaluator_of(request)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem+json error responses."""
    text = {400: "Malformed request body", 401: "No valid credential", 403: "Credential lacks the scope",
            404: "Not found", 413: "Request body too large",
            422: "Invalid request: the problem names each offending field", 503: "Not ready or engine failure"}
    return {s: {"description": text[s], "model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}


def _caller(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.id if principal else None


def record_decision(request: Request, decision: Decision, *, id: str, channel: Channel, started: float,
                    patient_id: str | None = None, outcome: str | None = None, caller: str | None = None,
                    detail: dict[str, Any] | None = None) -> None:
    """Queue the audit record of a decision (never blocks the answer; see service/audit/runtime.py)."""
    auditor = getattr(request.app.state, "auditor", None)
    if auditor is None:
        return
    auditor.submit(record_of(decision, id=id, channel=channel, caller=caller or _caller(request),
                             patient_hash=auditor.patient_hash(patient_id),
                             latency_ms=(time.perf_counter() - started) * 1000, outcome=outcome,
                             request_id=request_id_var.get(), detail=detail))


_FEEDBACK_NS = uuid.UUID("1b7e4c55-6a0f-4f43-8a53-0f8f2f0b9d21")


def record_feedback(request: Request, service_id: str, items: list[Any]) -> None:
    """One audit record per feedback item; its id is derived from (service, card, outcome time), so a resent
    item is the same record. Reason codes are kept; the clinician's free-text comment is not."""
    auditor = getattr(request.app.state, "auditor", None)
    if auditor is None:
        return
    version = request.app.state.evaluator.kb.version
    for item in items:
        reason = getattr(getattr(item.overrideReason, "reason", None), "code", None) if item.overrideReason else None
        when = item.outcomeTimestamp
        auditor.submit(AuditRecord(
            id=str(uuid.uuid5(_FEEDBACK_NS, f"{service_id}|{item.card}|{when}")), channel="feedback",
            recorded_at=dt.datetime.now(dt.timezone.utc),
            caller=getattr(request.state, "cds_caller", None) or _caller(request), knowledge_version=version,
            as_of=None, patient_ref_hash=None, fired=(), not_evaluated=(), outcome=item.outcome, latency_ms=0.0,
            facts=None, request_id=request_id_var.get(),
            detail={"service": service_id, "card": item.card, "override_reason": reason}))
