"""A real service for the tests that need one over HTTP: `python -m service.serve` (uvicorn under its supervisor)
on a free loopback port, started and stopped around a test module."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from ..conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_service(state: Path, port: int, **env: str) -> Iterator[str]:
    """Yields the base URL once /readyz answers; the audit store is a SQLite file in `state`."""
    base = f"http://127.0.0.1:{port}"
    environment = dict(os.environ, HOST="127.0.0.1", PORT=str(port), WORKERS="1", LOG_LEVEL="warning",
                       DATABASE_URL=f"sqlite:///{state / 'audit.db'}", **env)
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):                    # bounded: 300 x 0.2 s
            assert proc.poll() is None, "the service exited during start-up"
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("service not ready")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
