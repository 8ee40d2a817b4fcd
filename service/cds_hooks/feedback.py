"""CDS Hooks feedback: idempotent storage and override analytics, behind a small interface.

The same card may get feedback several times and one POST may carry many; a re-sent feedback is stored once:
the key is (service id, card uuid, outcome time in UTC). The cards this process issued are recorded too (card
uuid, rule, indicator: no patient data), so overrides can be counted per rule.

SQLite through SQLAlchemy 2 is the embedded default (CDS_FEEDBACK_DATABASE_URL). The audit store will take this
over (PostgreSQL-capable); FeedbackStore is the interface it has to provide. Nothing here logs a value: engines
are built with hide_parameters=True, so even a driver error carries none (user comments are clinician free text).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (Column, Integer, MetaData, String, Table, Text, UniqueConstraint, and_, create_engine,
                        event, func, select, true)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

from .models import (FeedbackItem, FeedbackSummary, ReasonCount, RuleFeedback, ServiceFeedbackSummary)

log = logging.getLogger("ldn.cds_hooks.feedback")

metadata = MetaData()
cards_table = Table(
    "cds_card", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("hook_instance", String(256), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", String(40), nullable=False),
)
feedback_table = Table(
    "cds_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(256), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),      # JSON list of suggestion uuids
    Column("reason_system", String(500), nullable=True),
    Column("reason_code", String(200), nullable=True),
    Column("reason_display", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("received_at", String(40), nullable=False),
    UniqueConstraint("service_id", "card_uuid", "outcome_timestamp", name="uq_cds_feedback_key"),
)


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    rule_id: str
    rule_version: str
    indicator: str


class FeedbackStore(Protocol):
    def record_cards(self, service_id: str, hook_instance: str, cards: list[IssuedCard]) -> None: ...
    def save(self, service_id: str, items: list[FeedbackItem]) -> tuple[int, int]: ...   # (stored, duplicates)
    def summary(self, service_id: str | None = None) -> FeedbackSummary: ...


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, hide_parameters=True, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        return create_engine(url, hide_parameters=True, poolclass=StaticPool,
                             connect_args={"check_same_thread": False})
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # As the audit store: a WAL journal with synchronous=FULL keeps every commit durable, and costs half the CPU
        # of the default rollback journal on the per-call insert of issued cards (and lets readers run alongside).
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()
    return engine


class SqlFeedbackStore:
    def __init__(self, url: str):
        self.engine = create_store_engine(url)
        metadata.create_all(self.engine)

    def _insert_ignoring_duplicates(self, table: Table, keys: list[str]):
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)

    def record_cards(self, service_id: str, hook_instance: str, cards: list[IssuedCard]) -> None:
        if not cards:
            return
        now = _now()
        stmt = self._insert_ignoring_duplicates(cards_table, ["card_uuid"])
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"card_uuid": c.card_uuid, "service_id": service_id,
                                 "hook_instance": hook_instance[:256], "rule_id": c.rule_id,
                                 "rule_version": c.rule_version, "indicator": c.indicator, "issued_at": now}
                                for c in cards])

    def save(self, service_id: str, items: list[FeedbackItem]) -> tuple[int, int]:
        stmt = self._insert_ignoring_duplicates(feedback_table, ["service_id", "card_uuid", "outcome_timestamp"])
        stored = 0
        now = _now()
        with self.engine.begin() as conn:
            for item in items:
                reason = item.overrideReason.reason if item.overrideReason else None
                row: dict[str, Any] = {
                    "service_id": service_id, "card_uuid": item.card, "outcome": item.outcome,
                    "outcome_timestamp": item.timestamp_key(),
                    "accepted_suggestions": json.dumps([s.id for s in item.acceptedSuggestions])
                    if item.acceptedSuggestions else None,
                    "reason_system": reason.system if reason else None,
                    "reason_code": reason.code if reason else None,
                    "reason_display": reason.display if reason else None,
                    "user_comment": item.overrideReason.userComment if item.overrideReason else None,
                    "received_at": now}
                stored += max(conn.execute(stmt, row).rowcount, 0)
        return stored, len(items) - stored

    def summary(self, service_id: str | None = None) -> FeedbackSummary:
        f, c = feedback_table, cards_table
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
