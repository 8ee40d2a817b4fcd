"""Drain at shutdown: after SIGTERM a worker answers /readyz 503 while it keeps serving (SHUTDOWN_DRAIN_S), so the
load balancer stops sending before the worker stops accepting. Run against service.serve, as deployed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from ..conftest import ROOT
from ..test_supervisor import _free_port, _wait_ready

BODY = json.dumps({"as_of": "2026-03-01", "ldn": {"status": "active", "dose_mg": 4.5}}).encode()


def _status(url: str, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_readiness_fails_first_while_the_worker_drains(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), WORKERS="1", LOG_LEVEL="warning", SHUTDOWN_DRAIN_S="120",
               DATABASE_URL=f"sqlite:///{tmp_path}/audit.db")
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, time.monotonic() + 90)
        assert _status(f"{base}/readyz") == 200
        proc.send_signal(signal.SIGTERM)           # what Kubernetes and docker stop send to the entry point
        seen = [_status(f"{base}/readyz") for _ in range(1)]
        for _ in range(300):
            if seen[-1] == 503:
                break
            time.sleep(0.1)
            seen.append(_status(f"{base}/readyz"))
        assert seen[-1] == 503 and set(seen) <= {200, 503}
        # Still serving while it drains: probes of life and real requests are answered.
        assert _status(f"{base}/healthz") == 200
        assert _status(f"{base}/v1/evaluations", BODY) == 200
        assert _status(f"{base}/readyz") == 503
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)         # ends the drain at once (a developer's Ctrl-C)
        assert proc.wait(timeout=60) is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_nothing_is_taken_over_without_uvicorn_handler():
    """In-process apps (TestClient, whose lifespan runs off the main thread) and a plain interpreter: no handler."""
    import threading

    from service.web.drain import Drain
    before = signal.getsignal(signal.SIGTERM)
    assert Drain().install(5) is False and signal.getsignal(signal.SIGTERM) is before
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(Drain().install(5)))
    t.start()
    t.join(timeout=10)
    assert results == [False]
