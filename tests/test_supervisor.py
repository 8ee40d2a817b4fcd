"""A crash of the C engine must not leave the service silently dead: the supervisor starts a new worker."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from .conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def _wait_ready(port: int, deadline: float) -> dict:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return json.load(r)
        except OSError:
            time.sleep(0.2)
    raise AssertionError("service not ready in time")


def _worker_pids(parent: int) -> list[int]:
    # The supervisor's children, less multiprocessing's resource tracker (it never serves).
    workers = []
    for pid in _children(parent):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except FileNotFoundError:
            continue
        if "resource_tracker" not in cmdline:
            workers.append(pid)
    return workers


def test_a_crashed_worker_is_replaced():
    port = _free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", WORKERS="1", LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, time.monotonic() + 60)
        (worker,) = _worker_pids(proc.pid)
        os.kill(worker, signal.SIGSEGV)            # what a durable-rules memory error does to a worker
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = _worker_pids(proc.pid)
            if workers and worker not in workers:
                break
            time.sleep(0.2)
        assert workers and worker not in workers, "no new worker after the crash"
        assert _wait_ready(port, time.monotonic() + 60)["status"] == "ready"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_production_refuses_to_start_open(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LDN_ENV": "production", "PORT": "0",
           "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db"}
    proc = subprocess.run([sys.executable, "-m", "service.serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    for needed in ("API_KEYS_FILE", "CDS_ISSUERS_FILE", "FORWARDED_ALLOW_IPS", "PUBLIC_BASE_URL", "AUDIT_HMAC_SECRET"):
        assert needed in proc.stderr


def test_refusals_are_empty_when_production_is_configured(tmp_path):
    from service.serve import refusals
    from service.settings import Settings
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: []\n")
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text("issuers: {}\n")
    ok = Settings(ldn_env="production", api_keys_file=keys, cds_issuers_file=issuers,
                  forwarded_allow_ips="10.0.0.5", audit_hmac_secret="x" * 32,
                  public_base_url="https://cds.hospital.example")
    assert refusals(ok) == []
    assert refusals(Settings(ldn_env="development")) == []
    assert len(refusals(Settings(ldn_env="production"))) == 5
    # Without PUBLIC_BASE_URL the CDS Hooks aud check would trust the Host header.
    (why,) = refusals(ok.model_copy(update={"public_base_url": None}))
    assert "PUBLIC_BASE_URL" in why


def test_workers_serve_on_uvloop_and_httptools():
    """The production server's event loop and HTTP parser (bench/README.md: ~1.5x asyncio + h11)."""
    import asyncio

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from service.serve import uvicorn_config
    from service.settings import Settings
    config = uvicorn_config(Settings())
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop = config.get_loop_factory()()
    try:
        assert type(loop).__module__.startswith("uvloop"), type(loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
