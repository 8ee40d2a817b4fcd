"""The decision log: the one place a decision is recorded, its metrics and its audit record (queued, never
blocking the answer; see service/audit/runtime.py). Every channel calls it once per decision."""
from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from fastapi import Request

from ..audit.record import AuditRecord, Channel, record_of
from ..core.decision import Decision
from ..core.ids import uuid5
from .metrics import count_decision
from .telemetry import request_id_var


def _caller(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.id if principal else None


def record_decision(request: Request, decision: Decision, *, id: str, channel: Channel, started: float,
                    patient_id: str | None = None, outcome: str | None = None, caller: str | None = None,
                    detail: dict[str, Any] | None = None) -> None:
    """Count the decision's advisories and queue its audit record."""
    count_decision(decision)
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
            id=uuid5(_FEEDBACK_NS, f"{service_id}|{item.card}|{when}"), channel="feedback",
            recorded_at=dt.datetime.now(dt.timezone.utc),
            caller=getattr(request.state, "cds_caller", None) or _caller(request), knowledge_version=version,
            as_of=None, patient_ref_hash=None, fired=(), not_evaluated=(), outcome=item.outcome, latency_ms=0.0,
            facts=None, request_id=request_id_var.get(),
            detail={"service": service_id, "card": item.card, "override_reason": reason}))
