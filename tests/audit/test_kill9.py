"""kill -9 of the running service during audit writes: the store is not corrupted and every record that was
committed before the kill is intact (records still queued in memory are the documented loss)."""
from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import sqlalchemy as sa

from ..conftest import ROOT
from ..test_supervisor import _free_port, _wait_ready

BODY = json.dumps({"as_of": "2026-03-01", "patient": {"id": "p-1"}, "ldn": {"status": "active", "dose_mg": 4.5},
                   "medications": [{"name": "Oxycodone 5 mg tablet", "status": "active"}]}).encode()


def _ids(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as con:
            return {r[0] for r in con.execute(sa.text("SELECT id FROM decisions"))}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill9_during_writes_leaves_a_sound_store(tmp_path, backend):
    db = tmp_path / "audit.db"
    if backend == "postgresql":
        url = os.environ.get("TEST_DATABASE_URL")
        assert url, "TEST_DATABASE_URL is set by make test / .ci/run (.ci/postgres.sh)"
    else:
        url = f"sqlite:///{db}"
    port = _free_port()
    env = dict(os.environ, PORT=str(port), WORKERS="2", LOG_LEVEL="warning", DATABASE_URL=url,
               AUDIT_FLUSH_INTERVAL_S="0.02", AUDIT_BATCH_SIZE="5")
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answered: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/evaluations", data=BODY,
                                             headers={"content-type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    answered.append(json.load(r)["evaluation_id"])
            except (OSError, http.client.HTTPException, ValueError):   # the service was killed mid-answer
                return
    try:
        _wait_ready(port, time.monotonic() + 60)
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Records committed so far, read from another connection while the service writes.
        committed = _ids(url) & set(answered)
        os.killpg(proc.pid, signal.SIGKILL)        # supervisor and workers at once, mid-write
        proc.wait(timeout=10)
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert len(answered) >= 150 and len(committed) >= 50
    if backend == "sqlite":
        assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert committed <= _ids(url)                   # nothing committed was lost or damaged
