"""The audit store: one database behind SQLAlchemy 2, SQLite (embedded default) or PostgreSQL, with the
`decisions` table (the audit trail), the CDS Hooks analytics tables (`cds_card`, `cds_feedback`) and the CDS Hooks
replay table shared by every worker and replica (`cds_jti`, service/audit/jti.py). One engine per process serves
them all (make_engine): every call has a timeout.

* SQLite: `sqlite:///var/audit.db` (relative to the working directory; the parent folder is created), WAL
  journal, a busy timeout, synchronous=FULL (a committed audit record survives a crash of the process, and of
  the machine).
* PostgreSQL: `postgresql+psycopg://user:pass@host/db` through psycopg 3; `postgresql://` and `postgres://`
  URLs are read as psycopg ones. pool_pre_ping, connect and statement timeouts, TCP keepalives.

The schema is created and changed only by the Alembic migrations (`service.audit.migrate.upgrade`); the models
here describe it for queries, and a test checks that the two agree.

Writes are idempotent on the record id (INSERT ... ON CONFLICT (id) DO NOTHING on both databases): a re-sent
record neither duplicates nor fails its batch. Nothing here logs a record, a parameter or a URL password:
engines are built with hide_parameters=True, so even a driver error carries no values.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import weakref
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from sqlalchemy import (JSON, Column, Date, DateTime, Float, Index, Integer, String, Table, Text, UniqueConstraint,
                        create_engine, event, func, select, text, tuple_)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from .record import AuditRecord

log = logging.getLogger("ldn.audit.store")

DEFAULT_DATABASE_URL = "sqlite:///var/audit.db"
MAX_QUERY_LIMIT = 10_000


class AuditSettings(Protocol):
    """The settings the audit trail reads (service.settings.Settings provides them)."""

    database_url: str
    audit_batch_size: int
    audit_flush_interval_s: float
    audit_queue_max: int


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp on both databases: stored as UTC (SQLite has no time zones; PostgreSQL's
    timestamptz), read back as an aware UTC datetime. Naive datetimes are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("recorded_at must be timezone-aware")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _json() -> JSON:
    # JSONB on PostgreSQL (indexable, queryable in audits); SQL NULL for None rather than JSON 'null'.
    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    """One decision: evaluation, order check, CDS Hooks call or feedback (service.audit.record.AuditRecord)."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    channel: Mapped[str] = mapped_column(String, nullable=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, nullable=False)
    caller: Mapped[str | None] = mapped_column(String, nullable=True)
    knowledge_version: Mapped[str] = mapped_column(String, nullable=False)
    as_of: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    patient_ref_hash: Mapped[str | None] = mapped_column(String, nullable=True)
    fired: Mapped[list[dict[str, Any]]] = mapped_column(_json(), nullable=False)
    not_evaluated: Mapped[list[dict[str, Any]]] = mapped_column(_json(), nullable=False)
    outcome: Mapped[str | None] = mapped_column(String, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    facts: Mapped[dict[str, Any] | None] = mapped_column(_json(), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(_json(), nullable=False)

    __table_args__ = (
        Index("ix_decisions_recorded_at", "recorded_at"),
        Index("ix_decisions_channel_recorded_at", "channel", "recorded_at"),
        Index("ix_decisions_patient_ref_hash", "patient_ref_hash", "recorded_at"),
        Index("ix_decisions_knowledge_version", "knowledge_version"),
    )


class JtiRow(Base):
    """A CDS Hooks JWT id seen by any worker or replica (service.audit.jti): the key is a hash of (iss, jti);
    the row stops counting (and is swept) once the token could no longer pass its exp check."""

    __tablename__ = "cds_jti"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (Index("ix_cds_jti_expires_at", "expires_at"),)


metadata = Base.metadata
decisions = DecisionRow.__table__
jti_table = JtiRow.__table__

# CDS Hooks analytics (service/audit/feedback.py): the cards issued (no patient data) and the feedback on them.
cds_cards = Table(
    "cds_card", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("hook_instance", String(256), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", String(40), nullable=False),
)
cds_feedback = Table(
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


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def normalize_url(url: str | URL) -> URL:
    """Parse and normalise a database URL: PostgreSQL always through psycopg 3. Errors never echo the URL
    (it may hold a password)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        raise ValueError("DATABASE_URL is not a valid database URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(f"PostgreSQL driver {driver!r} is not supported: use postgresql+psycopg://")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValueError(f"SQLite driver {driver!r} is not supported: use sqlite:///path/to/audit.db")
        return parsed
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///... or postgresql+psycopg://...")


def _sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in (url.database or "")


def make_engine(url: str | URL, *, sqlite_busy_timeout_s: float = 5.0, connect_timeout_s: float = 5.0,
                statement_timeout_s: float | None = 30.0, pool_size: int = 5) -> Engine:
    """An engine configured for the audit store (also used by the migrations)."""
    url = normalize_url(url)
    common: dict[str, Any] = {"hide_parameters": True, "json_serializer": _json_dumps}
    if url.get_backend_name() == "sqlite":
        busy_ms = max(0, int(sqlite_busy_timeout_s * 1000))
        if _sqlite_memory(url):
            engine = create_engine(url, poolclass=StaticPool,
                                   connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_s},
                                   **common)
        else:
            database = url.database or ""
            if not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, pool_size=pool_size,
                                   connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_s},
                                   **common)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
            finally:
                cursor.close()
        return engine

    connect_args: dict[str, Any] = {
        "connect_timeout": max(2, int(round(connect_timeout_s))),   # libpq: whole seconds, 2 at least
        "application_name": "ldn-cds-audit",
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
    }
    if statement_timeout_s:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size,
                         pool_timeout=max(1.0, connect_timeout_s), pool_recycle=1800,
                         connect_args=connect_args, **common)


_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()
WRITE_LOCK_TIMEOUT_S = 10.0


@contextlib.contextmanager
def writing(engine: Engine, timeout_s: float = WRITE_LOCK_TIMEOUT_S) -> Iterator[Connection]:
    """engine.begin() for a write. On SQLite, one writer of this process at a time: the audit trail, the CDS
    store and the jti check share one file, and two writers waiting for each other inside SQLite's busy handler
    ran past its timeout (a batch of audit records dropped). TimeoutError if the lock is not had in time."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.setdefault(engine, threading.Lock())
    if not lock.acquire(timeout=timeout_s):
        raise TimeoutError("another write to the audit database did not finish in time")
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        lock.release()


def insert_ignoring_duplicates(dialect: str, table: Table, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING: RETURNING names the rows inserted and makes SQLAlchemy
    send a batch as one multi-row statement ("insertmanyvalues"), not one driver step per row: each step gives up
    the GIL, and the writer thread then waits for it behind a busy request thread (200 rows: ~1.2 s against
    ~0.15 s; bench/README.md)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=keys).returning(table.c[keys[0]])


def insert_rows(conn: Connection, insert: Any, rows: list[dict[str, Any]]) -> int:
    """Insert in chunks of power-of-two sizes (200 rows: 128 + 64 + 8): a few statements per batch, and at most
    eight statement shapes per table, so the driver's prepared-statement cache stays bounded (one shape per batch
    size grew the worker by ~5 MB per 1,000 calls). The number of rows inserted."""
    inserted, start = 0, 0
    for bit in reversed(range(len(rows).bit_length())):
        if len(rows) >> bit & 1:
            inserted += len(conn.execute(insert, rows[start:start + (1 << bit)]).all())
            start += 1 << bit
    return inserted


def _row(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id, "channel": record.channel, "recorded_at": record.recorded_at, "caller": record.caller,
        "knowledge_version": record.knowledge_version, "as_of": record.as_of,
        "patient_ref_hash": record.patient_ref_hash,
        "fired": [dict(f) for f in record.fired],
        "not_evaluated": [dict(n) for n in record.not_evaluated],
        "outcome": record.outcome, "latency_ms": float(record.latency_ms), "facts": record.facts,
        "request_id": record.request_id, "detail": dict(record.detail or {}),
    }


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        id=row.id, channel=row.channel, recorded_at=row.recorded_at, caller=row.caller,
        knowledge_version=row.knowledge_version, as_of=row.as_of, patient_ref_hash=row.patient_ref_hash,
        fired=tuple(dict(f) for f in row.fired or ()),
        not_evaluated=tuple(dict(n) for n in row.not_evaluated or ()),
        outcome=row.outcome, latency_ms=row.latency_ms, facts=row.facts, request_id=row.request_id,
        detail=dict(row.detail or {}))


class AuditStore:
    """Reads and writes audit records. Thread-safe (one pooled engine); create one per process (after a fork,
    not before: engines and their connections are not shared across processes)."""

    def __init__(self, database_url: str | URL, **engine_options: Any):
        self.url = normalize_url(database_url)
        self.engine = make_engine(self.url, **engine_options)
        self.dialect = self.engine.dialect.name

    @classmethod
    def from_settings(cls, settings: AuditSettings, **engine_options: Any) -> "AuditStore":
        return cls(settings.database_url, **engine_options)

    def __repr__(self) -> str:
        return f"AuditStore({self.url.render_as_string(hide_password=True)!r})"

    def write_batch(self, records: Iterable[AuditRecord]) -> None:
        """Write the records in one transaction. Records whose id is already stored are skipped (idempotent);
        any error leaves the batch uncommitted and propagates (the writer retries)."""
        rows: dict[str, dict[str, Any]] = {}
        for record in records:
            rows.setdefault(record.id, _row(record))      # a repeated id within the batch: first one wins
        if not rows:
            return
        with writing(self.engine) as conn:
            insert_rows(conn, insert_ignoring_duplicates(self.dialect, decisions, ["id"]), list(rows.values()))

    def get(self, id: str) -> AuditRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(decisions).where(decisions.c.id == id)).first()
        return _record(row) if row is not None else None

    def query(self, channel: str | None = None, since: dt.datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        """Records in time order (oldest first; ties by id), from `since` (inclusive, timezone-aware) on."""
        stmt = select(decisions)
        if channel is not None:
            stmt = stmt.where(decisions.c.channel == channel)
        if since is not None:
            if since.tzinfo is None or since.utcoffset() is None:
                raise ValueError("since must be timezone-aware")
            stmt = stmt.where(decisions.c.recorded_at >= since)
        limit = max(1, min(int(limit), MAX_QUERY_LIMIT))
        stmt = stmt.order_by(decisions.c.recorded_at, decisions.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def iterate(self, since: dt.datetime | None = None, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record from `since` on, oldest first, read in batches (keyset paging on recorded_at, id)."""
        if since is not None and (since.tzinfo is None or since.utcoffset() is None):
            raise ValueError("since must be timezone-aware")
        after: tuple[dt.datetime, str] | None = None
        while True:
            stmt = select(decisions)
            if since is not None:
                stmt = stmt.where(decisions.c.recorded_at >= since)
            if after is not None:
                stmt = stmt.where(tuple_(decisions.c.recorded_at, decisions.c.id) > tuple_(*after))
            stmt = stmt.order_by(decisions.c.recorded_at, decisions.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = [_record(row) for row in conn.execute(stmt)]
            yield from rows
            if len(rows) < batch:
                return
            after = (rows[-1].recorded_at, rows[-1].id)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())

    def ids(self, ids: Sequence[str] | None = None) -> set[str]:
        """The stored ids (all of them, or those among `ids`)."""
        stmt = select(decisions.c.id)
        found: set[str] = set()
        with self.engine.connect() as conn:
            if ids is None:
                return {r[0] for r in conn.execute(stmt)}
            wanted = list(ids)
            for i in range(0, len(wanted), 500):
                found |= {r[0] for r in conn.execute(stmt.where(decisions.c.id.in_(wanted[i:i + 500])))}
        return found

    def ping(self) -> bool:
        """True when the database answers (readiness). Never raises."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:   # noqa: BLE001 - any failure means "not reachable"
            log.debug("audit store ping failed: %s", type(exc).__name__)
            return False

    def close(self) -> None:
        self.engine.dispose()
