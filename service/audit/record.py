"""One audit record per decision (evaluation, order check, CDS Hooks call, feedback).

Built from the shared Decision by `record_of`; carries no patient identifier (only a keyed hash), no names and
no free text from requests: the engine fact it stores is made of flags, counts, numbers, dates and codes from
closed vocabularies (schemas/facts.schema.json), which is also what a replay needs.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:   # kept out of the import path: writer processes need the record, not the engine
    from ..core.decision import Decision

Channel = Literal["evaluation", "order-check", "cds-hooks", "feedback"]


def patient_ref_hash(secret: bytes, patient_id: str | None) -> str | None:
    """HMAC-SHA256 of the caller's patient reference: linkable across records, not reversible without the key."""
    if not patient_id:
        return None
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    id: str                                   # evaluation_id, order_check_id, CDS hook call id, feedback id
    channel: Channel
    recorded_at: dt.datetime                  # UTC
    caller: str | None                        # authenticated identity (key id, JWT iss/sub); never a secret
    knowledge_version: str
    as_of: dt.date | None
    patient_ref_hash: str | None
    fired: tuple[dict[str, str], ...]         # {rule_id, rule_version, severity}
    not_evaluated: tuple[dict[str, Any], ...]  # {rule_id, rule_version, missing: [...]}
    outcome: str | None                       # verdict (order checks), card count (hooks), feedback outcome
    latency_ms: float
    facts: dict[str, Any] | None              # the engine fact, for replay (no names, no free text)
    request_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)   # channel-specific, PHI-free (e.g. hook name)


def record_of(decision: "Decision", *, id: str, channel: Channel, caller: str | None, patient_hash: str | None,
              latency_ms: float, outcome: str | None = None, request_id: str | None = None,
              detail: dict[str, Any] | None = None) -> AuditRecord:
    return AuditRecord(
        id=id, channel=channel, recorded_at=dt.datetime.now(dt.timezone.utc), caller=caller,
        knowledge_version=decision.knowledge_version, as_of=decision.as_of, patient_ref_hash=patient_hash,
        fired=tuple({"rule_id": a.rule_id, "rule_version": a.rule_version, "severity": a.severity}
                    for a in decision.advisories),
        not_evaluated=tuple({"rule_id": n.rule_id, "rule_version": n.rule_version, "missing": list(n.missing)}
                            for n in decision.not_evaluated),
        outcome=outcome, latency_ms=round(latency_ms, 3), facts=decision.facts.fact, request_id=request_id,
        detail=dict(detail or {}))
