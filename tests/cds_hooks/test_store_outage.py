"""PostgreSQL frozen (SIGSTOP: the server neither answers nor fails, as in a stalled VM or a storage hang) under
CDS Hooks traffic: the running service keeps answering hooks, feedback gets a 503 in bounded time, and
/healthz, /readyz and /metrics answer throughout (they never queue behind request work or touch the database);
/readyz says the CDS store is degraded. Issued cards and feedback go through one bounded writer."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ..audit.test_store import fresh_pg_database
from ..conftest import ROOT
from ..test_supervisor import _children, _free_port, _wait_ready
from .support import bundle, hook_request, ldn_draft, oxycodone, record

PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_CTL = os.environ.get("TEST_PG_CTL")


def _cluster_pids() -> list[int]:
    """The postmaster of the test cluster and every process it started (its backends)."""
    args = shlex.split(PG_CTL or "")
    postmaster = int((Path(args[args.index("-D") + 1]) / "postmaster.pid").read_text().split()[0])
    return [postmaster, *_children(postmaster)]


def _call(port: int, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def pg_database():
    if not (PG_URL and PG_CTL):
        pytest.fail("TEST_DATABASE_URL and TEST_PG_CTL are set by make test (.ci/postgres.sh)")
    with fresh_pg_database("cds_outage") as url:
        yield url


SIGN = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(medicationRequests=bundle(oxycodone())))
FEEDBACK = {"feedback": [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2026-03-01T10:00:00Z",
                          "overrideReason": {"userComment": "x"}}]}


def test_probes_answer_while_postgresql_is_frozen(pg_database):
    port = _free_port()
    env = dict(os.environ, PORT=str(port), WORKERS="1", LOG_LEVEL="warning", DATABASE_URL=pg_database,
               CDS_FEEDBACK_TIMEOUT_S="1", AUDIT_FLUSH_INTERVAL_S="0.02")
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    frozen: list[int] = []
    workers: list[threading.Thread] = []
    try:
        _wait_ready(port, time.monotonic() + 60)
        assert _call(port, "POST", "/cds-services/ldn-order-sign", SIGN)[0] == 200
        assert _call(port, "POST", "/cds-services/ldn-order-sign/feedback", FEEDBACK)[0] == 200   # stored
        frozen = _cluster_pids()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        # More feedback at once than the thread pool has threads, and hooks that issue cards.
        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(
            _call(port, "POST", "/cds-services/ldn-order-sign/feedback", FEEDBACK, timeout=60)[0]))
            for _ in range(60)]
        for w in workers:
            w.start()
        for _ in range(20):
            assert _call(port, "POST", "/cds-services/ldn-order-sign", SIGN)[0] == 200
        for path in ("/healthz", "/readyz", "/metrics"):
            assert _call(port, "GET", path)[0] == 200                  # within the 10 s client timeout
        degraded = None
        for _ in range(60):                                          # the writer's stall shows within ~10 s
            status, body = _call(port, "GET", "/readyz")
            assert status == 200
            if json.loads(body)["cds_store"] == "unavailable":
                degraded = json.loads(body)
                break
            time.sleep(0.5)
        assert degraded is not None and degraded["status"] == "degraded"
        for w in workers:
            w.join(60)
        assert len(results) == 60 and set(results) == {503}           # each told to send again, none hung
        metrics = _call(port, "GET", "/metrics")[1]
        assert "ldn_cds_store_writes_total" in metrics
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for w in workers:
            w.join(60)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
