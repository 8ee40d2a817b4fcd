"""The CDS Hooks replay check shared by every worker and replica: one row per JWT id in the audit database.

`claim(key, expires_at)` is one atomic statement: insert the key (the verifier's "iss, jti"), or take over a row
whose token can no longer be valid; it answers False when a live row holds the key (a replay), whichever worker
or replica wrote it. `seen(key, exp)` is the same as the verifier's ReplayGuard (service.cds_hooks.security). SQLite serialises writers; on PostgreSQL, INSERT ... ON CONFLICT DO UPDATE ... WHERE settles two
concurrent claims of one key as one winner. Rows past their expiry are swept now and then by the claimer.
Rows hold a SHA-256 of the key: fixed-size, and no token content is stored.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from sqlalchemy import delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from .store import jti_table, writing

SWEEP_INTERVAL_S = 60.0
STATEMENT_TIMEOUT_MS = 2000     # a replay check that cannot finish fails closed (401), it never waits long


def jti_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class JtiStore:
    """Thread-safe (one pooled engine, the audit store's). The schema comes from the audit migrations."""

    def __init__(self, engine: Engine, leeway_s: float = 30.0, clock: Callable[[], float] = time.time,
                 sweep_interval_s: float = SWEEP_INTERVAL_S):
        self.engine, self.leeway_s, self.clock, self.sweep_interval_s = engine, leeway_s, clock, sweep_interval_s
        self._last_sweep = float("-inf")
        self._postgres = engine.dialect.name == "postgresql"

    def _claim_statement(self, key: str, expires_at: float, now: float) -> Any:
        insert = postgresql.insert if self._postgres else sqlite.insert
        stmt = insert(jti_table).values(key=key, expires_at=expires_at)
        return stmt.on_conflict_do_update(index_elements=[jti_table.c.key],
                                          set_={"expires_at": stmt.excluded.expires_at},
                                          where=jti_table.c.expires_at < now).returning(jti_table.c.key)

    def seen(self, key: str, exp: float) -> bool:
        """The ReplayGuard: True for a replay; else the key is held until the token could no longer pass its
        exp check (exp + the clock-skew leeway). Raises when the database cannot answer."""
        return not self.claim(key, exp + self.leeway_s)

    def claim(self, key: str, expires_at: float, now: float | None = None) -> bool:
        """True: first use of this key while it can be valid (a row expired by `now` is taken over).
        False: a replay. Raises when the database cannot answer (the caller refuses the token)."""
        now = self.clock() if now is None else now
        with writing(self.engine, timeout_s=STATEMENT_TIMEOUT_MS / 1000) as conn:
            if self._postgres:
                conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            # RETURNING names the row only when it was inserted or taken over (rowcount is not reliable here).
            fresh = conn.execute(self._claim_statement(jti_key(key), expires_at, now)).first() is not None
        if now - self._last_sweep >= self.sweep_interval_s:
            self._last_sweep = now
            self.sweep(now)
        return fresh

    def sweep(self, now: float | None = None) -> int:
        """Delete the rows of tokens that can no longer be valid; the number deleted."""
        now = self.clock() if now is None else now
        with writing(self.engine) as conn:
            return conn.execute(delete(jti_table).where(jti_table.c.expires_at < now)).rowcount

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM cds_jti")).scalar_one())
