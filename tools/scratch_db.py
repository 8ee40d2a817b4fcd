"""A throwaway PostgreSQL database on a server (the .ci/postgres.sh cluster): made, handed over, dropped.

    with fresh_database(server_url, prefix="audit_t") as url: ...      # tests, tools/proof_scaleout.py
"""
from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.audit.store import normalize_url


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "ldn_scratch") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalize_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
