"""GET /v1/evaluations/{id} and /v1/order-checks/{id}: the recorded decision, optionally replayed."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import Field

from ..audit.record import AuditRecord
from ..audit.replay import replay as replay_record
from ..web.auth import require
from ..web.problems import error_responses
from .models import Out, Severity

router = APIRouter(prefix="/v1", tags=["audit"], dependencies=[Depends(require("audit-read"))])


class FiredRule(Out):
    rule_id: str
    rule_version: str
    severity: Severity


class SkippedRule(Out):
    rule_id: str
    rule_version: str
    missing: list[str]


class Replay(Out):
    replayed: bool
    same: bool = Field(description="The replay fired the same rules, versions and severities.")
    loaded_knowledge_version: str
    fired: list[FiredRule] | None
    reason: str | None = None


class RecordedDecision(Out):
    id: str
    channel: Literal["evaluation", "order-check", "cds-hooks", "feedback"]
    recorded_at: dt.datetime
    caller: str | None
    knowledge_version: str
    as_of: dt.date | None
    patient_ref_hash: str | None
    fired: list[FiredRule]
    not_evaluated: list[SkippedRule]
    outcome: str | None
    latency_ms: float
    request_id: str | None
    facts: dict[str, Any] | None
    replay: Replay | None = None


def _recorded(request: Request, channel: str, record_id: str, replay: bool) -> RecordedDecision:
    auditor = request.app.state.auditor
    try:
        record: AuditRecord | None = auditor.get(record_id)
    except Exception as exc:   # the store is down: say so, do not pretend the record does not exist
        raise HTTPException(503, "The audit store is unavailable.") from exc
    if record is None or record.channel != channel:
        raise HTTPException(404, f"no recorded {channel} with id {record_id!r} (records are written within a "
                                 "second of the answer)")
    out = RecordedDecision(
        id=record.id, channel=record.channel, recorded_at=record.recorded_at, caller=record.caller,
        knowledge_version=record.knowledge_version, as_of=record.as_of, patient_ref_hash=record.patient_ref_hash,
        fired=[FiredRule(**f) for f in record.fired], not_evaluated=[SkippedRule(**n) for n in record.not_evaluated],
        outcome=record.outcome, latency_ms=record.latency_ms, request_id=record.request_id, facts=record.facts)
    if replay:
        r = replay_record(record, request.app.state.evaluator)
        out.replay = Replay(replayed=r.replayed, same=r.same, loaded_knowledge_version=r.loaded_version,
                            fired=None if r.fired is None else [FiredRule(**f) for f in r.fired], reason=r.reason)
    return out


_REPLAY = Query(False, description="Re-evaluate the recorded facts under the loaded knowledge version and compare.")


@router.get("/evaluations/{record_id}", response_model=RecordedDecision, responses=error_responses(401, 403, 404, 503),
            summary="The recorded evaluation (audit), optionally replayed")
def get_evaluation(request: Request, record_id: str, replay: bool = _REPLAY) -> RecordedDecision:
    return _recorded(request, "evaluation", record_id, replay)


@router.get("/order-checks/{record_id}", response_model=RecordedDecision, responses=error_responses(401, 403, 404, 503),
            summary="The recorded order check (audit), optionally replayed")
def get_order_check(request: Request, record_id: str, replay: bool = _REPLAY) -> RecordedDecision:
    return _recorded(request, "order-check", record_id, replay)
