"""Schema migrations of the audit store: `alembic upgrade head` run from code (no alembic.ini at run time).

    upgrade(database_url)             # the service calls this at start-up, in the supervisor, before workers
    python -m service.audit.migrate   # the same from a shell (DATABASE_URL, else the SQLite default)

The whole upgrade is one transaction and is serialised between processes that start at once: PostgreSQL
takes a transaction-scoped advisory lock, SQLite a BEGIN IMMEDIATE (both databases have transactional DDL), so
a crash mid-migration leaves the previous schema, and a second starter waits, then finds the schema at head.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine

from .store import DEFAULT_DATABASE_URL, make_engine, normalize_url

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
ADVISORY_LOCK_KEY = 0x4C444E_A0D17     # "LDN" audit: any constant; the same in every process
log = logging.getLogger("ldn.audit.migrate")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def migration_engine(database_url: str | URL) -> Engine:
    """An engine for migrations: no statement timeout; on SQLite, transactions are real BEGIN IMMEDIATE ones
    (pysqlite would otherwise run DDL outside any transaction)."""
    url = normalize_url(database_url)
    engine = make_engine(url, statement_timeout_s=None, sqlite_busy_timeout_s=60.0, pool_size=1)
    if url.get_backend_name() == "sqlite":
        @event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection, _record) -> None:   # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:   # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Bring the store's schema to `revision` (default: the newest). Idempotent."""
    engine = migration_engine(database_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
    log.info("audit store schema at %s (%s)", revision, engine.url.render_as_string(hide_password=True))


def head() -> str:
    """The newest revision the code knows."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the audit migrations have {len(heads)} heads; expected one")
    return heads[0]


def current(database_url: str | URL) -> str | None:
    """The revision the store is at (None: never migrated)."""
    engine = migration_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    upgrade(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
