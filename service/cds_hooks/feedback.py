"""CDS Hooks feedback: FeedbackItems as rows of the audit database, and override analytics from its counts.

The same card may get feedback several times and one POST may carry many; a re-sent feedback is stored once:
the key is (service id, card uuid, outcome time in UTC). The cards issued are recorded too (card uuid, rule,
indicator: no patient data), so overrides can be counted per rule. Storage is service/audit/feedback.py: the
audit store's engine, its Alembic history, a bounded writer. Nothing here logs a value (user comments are
clinician free text).
"""
from __future__ import annotations

import json

from ..audit.feedback import FeedbackRow, FeedbackStore, IssuedCard, IssuedCards
from .models import (FeedbackItem, FeedbackSummary, ReasonCount, RuleFeedback, ServiceFeedbackSummary)

__all__ = ["FeedbackStore", "IssuedCard", "IssuedCards", "rows_of", "summary"]


def rows_of(service_id: str, items: list[FeedbackItem]) -> list[FeedbackRow]:
    out = []
    for item in items:
        reason = item.overrideReason.reason if item.overrideReason else None
        out.append(FeedbackRow(
            service_id=service_id, card_uuid=item.card, outcome=item.outcome,
            outcome_timestamp=item.timestamp_key(),
            accepted_suggestions=json.dumps([s.id for s in item.acceptedSuggestions])
            if item.acceptedSuggestions else None,
            reason_system=reason.system if reason else None, reason_code=reason.code if reason else None,
            reason_display=reason.display if reason else None,
            user_comment=item.overrideReason.userComment if item.overrideReason else None))
    return out


def summary(store: FeedbackStore, service_id: str | None = None) -> FeedbackSummary:
    raw = store.summary_rows(service_id)
    outcomes, no_reason, reasons, issued, by_rule = raw.outcomes, raw.no_reason, raw.reasons, raw.issued, raw.by_rule
    services = sorted({r[0] for r in outcomes} | {r[0] for r in issued})
    out = []
    for sid in services:
        counts = {o: n for s, o, n in outcomes if s == sid}
        rules: dict[str, dict[str, int]] = {}
        for s, rule, n in issued:
            if s == sid:
                rules.setdefault(rule, {"issued": 0, "accepted": 0, "overridden": 0})["issued"] = n
        for s, rule, outcome, n in by_rule:
            if s == sid:
                rules.setdefault(rule, {"issued": 0, "accepted": 0, "overridden": 0})[outcome] = n
        out.append(ServiceFeedbackSummary(
            service_id=sid, feedback=sum(counts.values()), accepted=counts.get("accepted", 0),
            overridden=counts.get("overridden", 0), overridden_without_reason=no_reason.get(sid, 0),
            override_reasons=sorted((ReasonCount(system=sy, code=co, display=di, count=n)
                                     for s, sy, co, di, n in reasons if s == sid),
                                    key=lambda r: (-r.count, r.system, r.code)),
            by_rule=[RuleFeedback(rule_id=rule, cards_issued=v["issued"], accepted=v["accepted"],
                                  overridden=v["overridden"]) for rule, v in sorted(rules.items())]))
    return FeedbackSummary(services=out)
