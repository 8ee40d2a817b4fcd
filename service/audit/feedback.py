"""CDS Hooks analytics in the audit database: the cards issued and the feedback on them.

Writes go through a bounded writer (service.audit.writer.AuditWriter, its own queue and thread): `write_batch`
takes a mix of IssuedCards (one hook call's cards: fire and forget) and FeedbackWrite (one feedback POST, whose
`done` callback gets (stored, duplicates) once committed). Both are idempotent: a card by its uuid, a feedback by
(service id, card uuid, outcome time in UTC). The engine is the audit store's (timeouts on every call).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sqlalchemy import and_, func, select, text, true
from sqlalchemy.engine import Connection, Engine

from .store import cds_cards, cds_feedback, insert_ignoring_duplicates, insert_rows, writing


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    rule_id: str
    rule_version: str
    indicator: str


@dataclass(frozen=True)
class IssuedCards:
    service_id: str
    hook_instance: str
    cards: tuple[IssuedCard, ...]


@dataclass(frozen=True)
class FeedbackRow:
    service_id: str
    card_uuid: str
    outcome: str
    outcome_timestamp: str              # UTC, one spelling per instant: the idempotency key
    accepted_suggestions: str | None = None   # JSON list of suggestion uuids
    reason_system: str | None = None
    reason_code: str | None = None
    reason_display: str | None = None
    user_comment: str | None = None


@dataclass
class FeedbackWrite:
    rows: list[FeedbackRow]
    done: Callable[[tuple[int, int]], Any] | None = None    # called with (stored, duplicates) after the commit
    _counts: tuple[int, int] = field(default=(0, 0), repr=False)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SummaryRows:
    """The raw counts the analytics are built from (service.cds_hooks.feedback.summary)."""
    outcomes: list[tuple[str, str, int]]                           # service, outcome, n
    no_reason: dict[str, int]                                      # service -> overridden without a reason
    reasons: list[tuple[str, str, str, str | None, int]]           # service, system, code, display, n
    issued: list[tuple[str, str, int]]                             # service, rule, cards issued
    by_rule: list[tuple[str, str, str, int]]                       # service, rule, outcome, n


class FeedbackStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def write_batch(self, items: Sequence[IssuedCards | FeedbackWrite]) -> None:
        """One transaction for the batch, the cards of all its calls in one statement; the feedback writes are
        told their counts once it is committed."""
        written = [item for item in items if isinstance(item, FeedbackWrite)]
        now = _now()
        cards = [{"card_uuid": c.card_uuid, "service_id": item.service_id, "hook_instance": item.hook_instance[:256],
                  "rule_id": c.rule_id, "rule_version": c.rule_version, "indicator": c.indicator, "issued_at": now}
                 for item in items if isinstance(item, IssuedCards) for c in item.cards]
        with writing(self.engine) as conn:
            if cards:
                insert_rows(conn, insert_ignoring_duplicates(self.engine.dialect.name, cds_cards, ["card_uuid"]), cards)
            for item in written:
                item._counts = self._feedback(conn, item.rows, now)
        for item in written:
            if item.done is not None:
                try:
                    item.done(item._counts)
                except Exception:   # noqa: BLE001 - the caller gave up (its loop closed): the rows are stored
                    pass

    def _feedback(self, conn: Connection, rows: list[FeedbackRow], now: str) -> tuple[int, int]:
        # RETURNING names the rows inserted (rowcount is -1 here on PostgreSQL, psycopg 3).
        if not rows:
            return 0, 0
        stmt = insert_ignoring_duplicates(self.engine.dialect.name, cds_feedback,
                                          ["service_id", "card_uuid", "outcome_timestamp"])
        stored = insert_rows(conn, stmt, [{**row.__dict__, "received_at": now} for row in rows])
        return stored, len(rows) - stored

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:   # noqa: BLE001 - any failure means "not reachable"
            return False

    def summary_rows(self, service_id: str | None = None) -> SummaryRows:
        f, c = cds_feedback, cds_cards
        only_f = (f.c.service_id == service_id) if service_id else true()
        only_c = (c.c.service_id == service_id) if service_id else true()
        with self.engine.connect() as conn:
            outcomes = conn.execute(select(f.c.service_id, f.c.outcome, func.count()).where(only_f)
                                    .group_by(f.c.service_id, f.c.outcome)).all()
            no_reason = dict(conn.execute(
                select(f.c.service_id, func.count()).where(only_f, f.c.outcome == "overridden",
                                                           f.c.reason_code.is_(None)).group_by(f.c.service_id)).all())
            reasons = conn.execute(
                select(f.c.service_id, f.c.reason_system, f.c.reason_code, func.max(f.c.reason_display), func.count())
                .where(only_f, f.c.outcome == "overridden", f.c.reason_code.is_not(None))
                .group_by(f.c.service_id, f.c.reason_system, f.c.reason_code)).all()
            issued = conn.execute(select(c.c.service_id, c.c.rule_id, func.count()).where(only_c)
                                  .group_by(c.c.service_id, c.c.rule_id)).all()
            by_rule = conn.execute(
                select(f.c.service_id, c.c.rule_id, f.c.outcome, func.count())
                .select_from(f.join(c, and_(c.c.card_uuid == f.c.card_uuid, c.c.service_id == f.c.service_id)))
                .where(only_f).group_by(f.c.service_id, c.c.rule_id, f.c.outcome)).all()
        return SummaryRows([tuple(r) for r in outcomes], no_reason, [tuple(r) for r in reasons],  # type: ignore[misc]
                           [tuple(r) for r in issued], [tuple(r) for r in by_rule])               # type: ignore[misc]
