"""The audit store on SQLite and PostgreSQL: migrations, round trips, idempotency, concurrency, outages, kill -9,
graceful shutdown, a hung store, replay, and no patient identifiers or names in the database.

PostgreSQL comes from TEST_DATABASE_URL (and TEST_PG_CTL to stop/start it), which .ci/postgres.sh provides;
`make test` and .ci/run call it. Each test gets its own database (PostgreSQL) or file (SQLite). Without
TEST_DATABASE_URL the PostgreSQL cases fail: they are never skipped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import StatementError
from sqlalchemy.pool import NullPool

from service.audit import migrate
from service.audit.feedback import FeedbackStore, IssuedCard, IssuedCards
from service.audit.jti import JtiStore
from service.audit.record import AuditRecord, patient_ref_hash, record_of
from service.audit.replay import fired_set, replay
from service.audit.store import AuditStore, metadata, normalize_url
from service.audit.writer import AuditWriter
from service.core.context import PatientContext
from service.knowledge.base import load_knowledge
from tools.scratch_db import fresh_database

from ..conftest import FIXED_TODAY

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_CTL = os.environ.get("TEST_PG_CTL")
SECRET = b"test-hmac-secret"
KV = "test-knowledge-version"


def synthetic(id: str, *, channel: str = "evaluation", at: dt.datetime | None = None,
              knowledge_version: str = KV) -> AuditRecord:
    """A PHI-free record that does not need the engine."""
    return AuditRecord(
        id=id, channel=channel, recorded_at=at or dt.datetime.now(dt.timezone.utc), caller="key:test",  # type: ignore[arg-type]
        knowledge_version=knowledge_version, as_of=dt.date(2026, 3, 1),
        patient_ref_hash=patient_ref_hash(SECRET, "patient-" + id[-3:]),
        fired=({"rule_id": "ldn-opioid-coadministration", "rule_version": "1.0.0", "severity": "critical"},),
        not_evaluated=({"rule_id": "ldn-titration-step", "rule_version": "1.0.0",
                        "missing": ["ldn.previous_dose_mg"]},),
        outcome=None, latency_ms=1.25,
        facts={"ldn": {"status": "active", "in_use": True, "has_previous_dose": False, "dose_mg": 4.5},
               "medications": {"known": True, "count": 1, "current_opioid_count": 1}},
        request_id="req-" + id, detail={"hook": "order-select"})


# --- backends ---------------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.fail("TEST_DATABASE_URL is not set: run `make test` (or `eval \"$(bash .ci/postgres.sh)\"` first)")
    return request.param


def fresh_pg_database(prefix: str = "audit_t") -> contextlib.AbstractContextManager[str]:
    """The URL of a new, empty database in the test cluster, dropped afterwards."""
    return fresh_database(PG_URL, prefix)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own for each test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/not-yet-there/audit.db"      # the store creates the folder
        return
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[AuditStore]:
    migrate.upgrade(db_url)
    s = AuditStore(db_url)
    yield s
    s.close()


def _decisions(evaluator) -> list[tuple[PatientContext, Any]]:
    """Real decisions: every rule's own test cases (firing, silent, escalated, not evaluated)."""
    out = []
    for rule in evaluator.kb.rules.values():
        for case in rule.tests:
            ctx = PatientContext.model_validate(case["context"])
            out.append((ctx, evaluator.evaluate(ctx, today=FIXED_TODAY)))
    return out


def _records(evaluator, channel: str = "evaluation") -> list[AuditRecord]:
    return [record_of(decision, id=str(uuid.uuid4()), channel=channel, caller="key:k1",  # type: ignore[arg-type]
                      patient_hash=patient_ref_hash(SECRET, f"p{i}"), latency_ms=3.14159, request_id=f"r{i}",
                      outcome="ok" if channel == "order-check" else None, detail={"n": i})
            for i, (_, decision) in enumerate(_decisions(evaluator))]


def _drops() -> tuple[list[tuple[int, str]], Any]:
    seen: list[tuple[int, str]] = []
    return seen, lambda n, reason: seen.append((n, reason))


def _dropped(seen: list[tuple[int, str]], reason: str | None = None) -> int:
    return sum(n for n, r in seen if reason is None or r == reason)


# --- schema ------------------------------------------------------------------------------------------------------

def test_migrations_from_empty(db_url: str):
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head() == "0003"     # one linear history: 0001, 0002, 0003
    store = AuditStore(db_url)
    try:
        insp = inspect(store.engine)
        assert {"decisions", "cds_jti", "alembic_version"} <= set(insp.get_table_names())
        assert {i["name"] for i in insp.get_indexes("decisions")} >= {
            "ix_decisions_recorded_at", "ix_decisions_channel_recorded_at", "ix_decisions_patient_ref_hash",
            "ix_decisions_knowledge_version"}
        with store.engine.connect() as conn:     # the migrations and the models describe the same schema
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()
    migrate.upgrade(db_url)                      # idempotent
    assert migrate.current(db_url) == "0003"


def test_two_processes_migrating_at_once(db_url: str):
    code = "import sys; from service.audit.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert migrate.current(db_url) == "0003"


def test_urls():
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///var/audit.db").database == "var/audit.db"
    for bad in ("mysql://u:secretpw@h/db", "postgresql+psycopg2://u:secretpw@h/db"):
        with pytest.raises(ValueError) as err:
            normalize_url(bad)
        assert "secretpw" not in str(err.value)
    settings = SimpleNamespace(database_url="sqlite://", audit_batch_size=7, audit_flush_interval_s=0.1,
                               audit_queue_max=70)
    store = AuditStore.from_settings(settings)
    writer = AuditWriter.from_settings(store, settings)
    try:
        assert (writer._batch_size, writer._flush_interval, writer._max_queue) == (7, 0.1, 70)
        assert store.ping()
    finally:
        writer.close()
        store.close()


# --- writing and reading -------------------------------------------------------------------------------------------

def test_round_trip_of_real_decisions(store: AuditStore, evaluator):
    records = _records(evaluator) + _records(evaluator, channel="order-check")[:5]
    assert any(r.fired for r in records) and any(r.not_evaluated for r in records)
    store.write_batch(records)
    for r in records:
        got = store.get(r.id)
        assert got == r, r.id
        assert got.recorded_at.tzinfo is not None and got.recorded_at.utcoffset() == dt.timedelta(0)
    assert store.get("no-such-id") is None
    assert store.count() == len(records)
    checks = store.query(channel="order-check")
    assert [r.id for r in checks] == [r.id for r in sorted(records[-5:], key=lambda r: (r.recorded_at, r.id))]
    assert len(store.query(channel="evaluation", limit=3)) == 3
    assert store.query(channel="feedback") == []


def test_query_since_and_order(store: AuditStore):
    base = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    records = [synthetic(f"q-{i:03d}", at=base + dt.timedelta(minutes=i)) for i in range(10)]
    store.write_batch(reversed(records))
    cet = dt.timezone(dt.timedelta(hours=1))
    since = (base + dt.timedelta(minutes=4)).astimezone(cet)      # any time zone, compared as an instant
    assert [r.id for r in store.query(since=since)] == [f"q-{i:03d}" for i in range(4, 10)]
    assert [r.id for r in store.query(since=since, limit=2)] == ["q-004", "q-005"]
    with pytest.raises(ValueError):
        store.query(since=dt.datetime(2026, 3, 1))
    with pytest.raises(StatementError):
        store.write_batch([synthetic("naive", at=dt.datetime(2026, 3, 1, 12, 0))])
    assert store.get("naive") is None


def test_rewrite_is_idempotent(store: AuditStore):
    first = [synthetic(f"idem-{i}") for i in range(50)]
    store.write_batch(first)
    changed = [synthetic(f"idem-{i}", channel="feedback") for i in range(25)]
    store.write_batch(changed + [synthetic(f"idem-{i}") for i in range(50, 60)] + first[:3])  # re-sent + new + dup
    store.write_batch(first)
    assert store.count() == 60
    assert store.get("idem-0") == first[0]                        # the first write wins; nothing is rewritten
    assert {r.channel for r in store.query(limit=1000)} == {"evaluation"}


@contextlib.contextmanager
def statements(engine) -> Iterator[list[tuple[str, str, str]]]:
    """(first word of the SQL, how SQLAlchemy sent it to the driver, the SQL) of every statement while inside:
    EXECUTEMANY is one driver step per row; INSERTMANYVALUES and EXECUTE are one statement."""
    seen: list[tuple[str, str, str]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement.split()[0].upper(), context.execute_style.name, statement))
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_batch_is_a_few_multi_row_statements_of_few_shapes(store: AuditStore):
    """A batch goes to the database as a few multi-row INSERTs, never one driver step per record: each step gives
    up the GIL and the writer thread then queues behind a busy request thread for it (200 records took ~1.2 s, the
    SQLite lock was held past the other writer's busy timeout and records were dropped). The statements come in
    power-of-two sizes: a shape per batch size filled the driver's statement cache (~5 MB per 1,000 calls)."""
    batch = [synthetic(f"one-{i}") for i in range(200)]
    with statements(store.engine) as seen:
        store.write_batch(batch)
    inserts = [s for s in seen if s[0] == "INSERT"]
    assert len(inserts) == 3 and "EXECUTEMANY" not in {style for _, style, _ in inserts}     # 128 + 64 + 8
    assert store.count() == 200
    with statements(store.engine) as seen:
        for size in range(1, 201):
            store.write_batch([synthetic(f"shape-{size}-{i}") for i in range(size)] + batch[:3])   # + re-sent
    assert len({sql for word, _, sql in seen if word == "INSERT"}) <= 8
    assert store.count() == 200 + sum(range(1, 201))


def test_a_refused_record_does_not_take_its_batch_with_it(store: AuditStore):
    seen, on_drop = _drops()
    writer = AuditWriter(store, batch_size=50, flush_interval_s=0.05, on_drop=on_drop)
    good = [synthetic(f"good-{i}") for i in range(20)]
    bad = synthetic("bad", at=dt.datetime(2026, 3, 1, 12, 0))   # naive timestamp: the store refuses it
    for r in good[:10] + [bad] + good[10:]:
        writer.submit(r)
    assert writer.close(timeout=30)
    assert seen == [(1, "rejected")]
    assert store.ids() == {r.id for r in good}
    assert writer.healthy


# --- concurrency ------------------------------------------------------------------------------------------------------

# Child processes build their records here (importing this module would import the app through conftest).
CHILD_PRELUDE = """
import datetime as dt, sys
from service.audit.record import AuditRecord
from service.audit.store import AuditStore
from service.audit.writer import AuditWriter

def synthetic(id):
    return AuditRecord(id=id, channel="evaluation", recorded_at=dt.datetime.now(dt.timezone.utc), caller="key:child",
                       knowledge_version="test-knowledge-version", as_of=dt.date(2026, 3, 1), patient_ref_hash=None,
                       fired=({"rule_id": "ldn-opioid-coadministration", "rule_version": "1.0.0",
                               "severity": "critical"},),
                       not_evaluated=(), outcome=None, latency_ms=1.0,
                       facts={"ldn": {"status": "active", "in_use": True, "dose_mg": 4.5}}, detail={})
"""

CONCURRENT_CHILD = CHILD_PRELUDE + """
url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = AuditStore(url)
drops = []
writer = AuditWriter(store, batch_size=100, flush_interval_s=0.02, on_drop=lambda k, r: drops.append((k, r)))
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    writer.submit(synthetic(f"{prefix}-{i}"))
    if i % 10 == 0:
        writer.submit(synthetic(f"shared-{i}"))      # written by both processes: no duplicate, no error
ok = writer.close(timeout=120)
store.close()
print("done", ok, drops, writer.written, flush=True)
sys.exit(0 if ok and not drops else 3)
"""


def test_concurrent_writers(store: AuditStore, db_url: str):
    n = 1000
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_CHILD, db_url, f"proc{k}", str(n)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    seen, on_drop = _drops()
    writer = AuditWriter(store, batch_size=100, flush_interval_s=0.02, on_drop=on_drop)
    errors: list[BaseException] = []

    def submitter(k: int) -> None:
        for i in range(n):
            writer.submit(synthetic(f"thread{k}-{i}"))

    def direct(k: int) -> None:
        try:
            for start in range(0, n, 50):
                store.write_batch([synthetic(f"direct{k}-{i}") for i in range(start, start + 50)])
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=direct, args=(k,)) for k in range(2)]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert writer.close(timeout=120)
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, out + err
    assert not errors, errors
    assert seen == []
    ids = store.ids()
    expected = {f"{who}-{i}" for who in ("thread0", "thread1", "thread2", "thread3", "direct0", "direct1",
                                         "proc0", "proc1") for i in range(n)}
    expected |= {f"shared-{i}" for i in range(0, n, 10)}
    assert ids == expected
    assert store.count() == len(expected) == 8 * n + n // 10


# --- the store going away and coming back ----------------------------------------------------------------------

class Outage:
    """Makes the store unavailable for writes, honestly: PostgreSQL is stopped (pg_ctl stop -m fast) and
    started again; SQLite is held under an exclusive lock by another connection (as a stuck process or a
    backup would), so writers time out on the busy timeout."""

    def __init__(self, backend: str, db_url: str):
        self.backend, self.db_url, self._lock, self._stopped = backend, db_url, None, False

    def down(self) -> None:
        if self.backend == "postgresql":
            self._stopped = True
            if not PG_CTL:
                pytest.fail("TEST_PG_CTL is not set: start PostgreSQL with .ci/postgres.sh")
            subprocess.run(shlex.split(PG_CTL) + ["-m", "fast", "stop"], check=True, capture_output=True)
        else:
            self._lock = sqlite3.connect(make_url(self.db_url).database, isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")

    def up(self) -> None:
        if self.backend == "postgresql" and self._stopped:
            subprocess.run(shlex.split(PG_CTL) + ["start"], check=True, capture_output=True)
            self._stopped = False
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None


def test_the_writers_of_one_sqlite_file_take_turns(tmp_path: Path):
    """The audit trail, the CDS store and the jti check write one SQLite file from one process: they take turns
    in the process instead of waiting for each other in SQLite's busy handler, which ran past its timeout under
    load and dropped whole batches. Here SQLite does not wait at all (busy timeout 0): any overlap would fail."""
    url = f"sqlite:///{tmp_path}/audit.db"
    migrate.upgrade(url)
    store = AuditStore(url, sqlite_busy_timeout_s=0)
    feedback, jti = FeedbackStore(store.engine), JtiStore(store.engine)
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            for i in range(40):
                work(i)
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)

    works = [lambda i: store.write_batch([synthetic(f"turn-{i}-{j}") for j in range(50)]),
             lambda i: feedback.write_batch([IssuedCards("ldn-order-sign", f"h{i}", tuple(
                 IssuedCard(f"card-{i}-{j}", "r", "1.0.0", "info") for j in range(50)))]),
             lambda i: jti.claim(f"iss, jti-{i}", time.time() + 60)]
    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == [] and store.count() == 2000 and jti.count() == 40
    finally:
        store.close()


def test_store_goes_away_and_comes_back(backend: str, db_url: str):
    migrate.upgrade(db_url)
    store = AuditStore(db_url, sqlite_busy_timeout_s=0.2)
    seen, on_drop = _drops()
    writes: list[int] = []
    writer = AuditWriter(store, batch_size=20, flush_interval_s=0.02, retries=2, retry_backoff_s=0.05,
                         on_drop=on_drop, on_write=writes.append)
    outage = Outage(backend, db_url)
    try:
        for i in range(40):
            writer.submit(synthetic(f"before-{i}"))
        assert writer.flush(timeout=60)
        assert writer.healthy and seen == [] and sum(writes) == 40

        outage.down()
        for i in range(40):
            assert writer.submit(synthetic(f"during-{i}"))       # answers still flow: submit accepts
        assert writer.flush(timeout=120)
        assert not writer.healthy                              # /readyz: degraded
        assert _dropped(seen, "store_error") == 40              # the loss is counted
        if backend == "postgresql":
            assert not store.ping()

        outage.up()
        for i in range(40):
            writer.submit(synthetic(f"after-{i}"))
        assert writer.flush(timeout=120)
        assert writer.healthy
        assert _dropped(seen) == 40
    finally:
        outage.up()
        assert writer.close(timeout=60)
    ids = store.ids()
    store.close()
    assert ids == {f"{w}-{i}" for w in ("before", "after") for i in range(40)}


# --- kill -9 during writes -------------------------------------------------------------------------------------------

KILL_CHILD = CHILD_PRELUDE + """
url, prefix = sys.argv[1], sys.argv[2]
store = AuditStore(url)
print("ready", flush=True)
n = 0
while True:
    ids = [f"{prefix}-{n + i}" for i in range(200)]
    store.write_batch([synthetic(i) for i in ids])          # returns once the transaction is committed
    n += 200
    sys.stdout.write("committed " + " ".join(ids) + " end\\n")
    sys.stdout.flush()
"""


def _integrity_ok(backend: str, db_url: str) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(make_url(db_url).database)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            conn.execute("SELECT count(*) FROM decisions").fetchone()
        finally:
            conn.close()
    else:
        engine = create_engine(normalize_url(db_url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*), count(DISTINCT id) FROM decisions")).one()
                conn.execute(text("SELECT * FROM decisions ORDER BY recorded_at DESC LIMIT 10")).all()
        finally:
            engine.dispose()


def test_kill_9_during_writes(backend: str, db_url: str):
    migrate.upgrade(db_url)
    committed: set[str] = set()
    rng = random.Random(20260301)
    for round_, batches in enumerate((1, 3, 6)):
        proc = subprocess.Popen([sys.executable, "-c", KILL_CHILD, db_url, f"kill{round_}"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            for _ in range(batches):
                line = proc.stdout.readline()
                assert line.endswith(" end\n"), proc.stderr.read()
                committed |= set(line.split()[1:-1])
            time.sleep(rng.uniform(0, 0.03))                   # land anywhere in the next transaction
            os.kill(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        for line in rest.splitlines(keepends=True):
            if line.startswith("committed ") and line.endswith(" end\n"):   # a line cut by the kill proves nothing
                committed |= set(line.split()[1:-1])
        _integrity_ok(backend, db_url)

    migrate.upgrade(db_url)                                    # the store opens and migrates as usual
    store = AuditStore(db_url)
    try:
        assert store.ids(sorted(committed)) == committed      # every committed record is intact
        assert all(store.get(i) is not None for i in sorted(committed)[:: max(1, len(committed) // 20)])
        assert store.count() % 200 == 0                        # whole batches only: no half transaction
        store.write_batch([synthetic("after-the-kill")])
        assert store.get("after-the-kill") is not None
    finally:
        store.close()


# --- shutdown and a hung store ----------------------------------------------------------------------------------------

def test_graceful_close_flushes_everything(store: AuditStore):
    seen, on_drop = _drops()
    writer = AuditWriter(store, batch_size=500, flush_interval_s=3600, on_drop=on_drop)  # never flushes by time
    for i in range(2345):
        assert writer.submit(synthetic(f"close-{i}"))
    assert writer.close(timeout=120)
    assert seen == []
    assert store.count() == 2345
    assert not writer.submit(synthetic("too-late"))
    assert seen == [(1, "closed")]


class Hang:
    """Makes the store hang (not fail): PostgreSQL's table is locked ACCESS EXCLUSIVE by another transaction;
    SQLite's database is locked by another connection while the store waits up to its busy timeout."""

    def __init__(self, backend: str, db_url: str):
        self.backend, self.db_url = backend, db_url
        if backend == "postgresql":
            self._engine = create_engine(normalize_url(db_url), poolclass=NullPool)
            self._conn = self._engine.connect()
            self._tx = self._conn.begin()
            self._conn.execute(text("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE"))
        else:
            self._conn = sqlite3.connect(make_url(db_url).database, isolation_level=None)
            self._conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self.backend == "postgresql":
            self._tx.rollback()
            self._conn.close()
            self._engine.dispose()
        else:
            self._conn.execute("ROLLBACK")
            self._conn.close()


def test_submit_never_blocks_when_the_store_hangs(backend: str, db_url: str):
    migrate.upgrade(db_url)
    store = AuditStore(db_url, sqlite_busy_timeout_s=60)
    seen, on_drop = _drops()
    writer = AuditWriter(store, batch_size=100, flush_interval_s=0.01, max_queue=1000, on_drop=on_drop)
    hang = Hang(backend, db_url)
    accepted: list[bool] = []
    try:
        writer.submit(synthetic("first"))
        time.sleep(0.2)                                         # the writer is now stuck inside the database
        submitter = threading.Thread(
            target=lambda: accepted.extend(writer.submit(synthetic(f"hang-{i}")) for i in range(10_000)))
        submitter.start()
        submitter.join(60)                                      # generous: it takes milliseconds
        assert not submitter.is_alive(), "submit blocked on a hung store"
    finally:
        hang.release()
    assert len(accepted) == 10_000
    assert accepted.count(False) == _dropped(seen, "queue_full") > 0
    assert writer.close(timeout=120)
    assert _dropped(seen) == _dropped(seen, "queue_full")      # nothing else lost once the store moved again
    assert store.count() == 1 + accepted.count(True)
    store.close()


class _HungStore:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_batch(self, records) -> None:
        self.entered.set()
        self.release.wait(60)
        raise ConnectionError("gave up")

    def ping(self) -> bool:
        return False


def test_close_gives_up_on_a_hung_store_and_counts_the_loss():
    hung = _HungStore()
    seen, on_drop = _drops()
    writer = AuditWriter(hung, batch_size=10, flush_interval_s=3600, on_drop=on_drop)   # batches of exactly 10
    for i in range(10):
        writer.submit(synthetic(f"x-{i}"))
    assert hung.entered.wait(10)
    for i in range(25):
        writer.submit(synthetic(f"y-{i}"))
    t0 = time.monotonic()
    assert writer.close(timeout=0.5) is False
    assert time.monotonic() - t0 < 30
    assert _dropped(seen, "shutdown") == 25
    hung.release.set()                                          # the batch in flight fails: counted as well
    deadline = time.monotonic() + 30
    while _dropped(seen) < 35 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _dropped(seen, "store_error") == 10
    assert not writer.healthy


# --- replay ------------------------------------------------------------------------------------------------------------

def test_replay_matches_the_evaluator_for_every_rule_case(evaluator):
    escalated = 0
    for ctx, decision in _decisions(evaluator):
        names = evaluator.engine.evaluate(dict(decision.facts.fact))
        expected = tuple({"rule_id": a.rule_id, "rule_version": a.rule_version, "severity": a.severity}
                         for a in decision.advisories)
        assert fired_set(evaluator.kb.active_rules, names) == expected
        escalated += any(a.severity != evaluator.kb.rules[a.rule_id].severity for a in decision.advisories)
    assert escalated, "no case exercises an escalation"


def test_replay_of_stored_decisions(store: AuditStore, evaluator):
    records = _records(evaluator)
    store.write_batch(records)
    for r in records:
        result = replay(store.get(r.id), evaluator)           # the stored fact, back through JSON
        assert result.replayed and result.loaded and result.same, result.reason
        assert {tuple(sorted(f.items())) for f in result.fired} == {tuple(sorted(f.items())) for f in r.fired}

    fired = next(r for r in records if r.fired)
    other = dataclasses.replace(fired, id="other-kv", knowledge_version="sha256:someother")
    store.write_batch([other])
    result = replay(store.get("other-kv"), evaluator)
    assert not result.replayed and not result.loaded and not result.same
    assert "not loaded" in result.reason and result.fired is None

    tampered = dataclasses.replace(fired, fired=())
    result = replay(tampered, evaluator)
    assert result.replayed and not result.same and "differs" in result.reason


def test_replay_under_a_reloaded_knowledge_base(evaluator):
    """The same knowledge files loaded again give the same version, so replay works across restarts."""
    assert load_knowledge().version == evaluator.kb.version


# --- no patient identifiers, names or free text ---------------------------------------------------------------------

PHI = ("PAT-SECRET-123", "SECRETNAME", "Oxycodone", "SECRETPROCEDURE", "SECRETTIMING")


def _dump(backend: str, db_url: str) -> str:
    """Every row of every table as text (and, for SQLite, the raw bytes of the database and its WAL)."""
    parts: list[str] = []
    if backend == "sqlite":
        path = make_url(db_url).database
        conn = sqlite3.connect(path)
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                parts += [repr(row) for row in conn.execute(f'SELECT * FROM "{table}"')]
        finally:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            f = Path(path + suffix)
            if f.exists():
                parts.append(f.read_bytes().decode("latin-1"))
    else:
        engine = create_engine(normalize_url(db_url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
                for table in list(tables):
                    parts += conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
        finally:
            engine.dispose()
    return "\n".join(parts)


def test_no_patient_identifiers_or_names_in_the_store(backend: str, store: AuditStore, db_url: str, evaluator):
    ctx = PatientContext.model_validate({
        "as_of": "2026-03-01", "patient": {"id": "PAT-SECRET-123"},
        "ldn": {"status": "active", "dose_mg": 4.5, "timing": "bedtime SECRETTIMING"},
        "medications": [{"name": "Oxycodone SECRETNAME 5 mg tablet", "status": "active"},
                        {"name": "Oxycodone SECRETNAME", "status": "proposed"}],
        "procedures": [{"name": "SECRETPROCEDURE knee", "date": "2026-03-02", "elective": True,
                        "opioids_expected": True}]})
    decision = evaluator.evaluate(ctx)
    assert decision.advisories                                # the decision did use the names
    patient_hash = patient_ref_hash(SECRET, ctx.patient.id)
    writer = AuditWriter(store, flush_interval_s=0.01)
    for channel in ("evaluation", "order-check", "cds-hooks", "feedback"):
        writer.submit(record_of(decision, id=str(uuid.uuid4()), channel=channel, caller="key:k1",
                                patient_hash=patient_hash, latency_ms=2.0, outcome="ok"))
    assert writer.close(timeout=60)
    assert store.count() == 4
    dump = _dump(backend, db_url)
    assert patient_hash in dump                               # the rows are there, keyed by the hash
    for secret in PHI:
        assert secret.lower() not in dump.lower(), secret
