"""HTTP load: a real uvicorn on 127.0.0.1 driven by wrk (Debian's package), or by a small asyncio client.

Closed loop at a fixed concurrency: C connections, each sending its next request when the previous answer
arrived (keep-alive). Every run returns its full latency histogram (microseconds -> count), so the runs of one
endpoint (A/B/A/B) merge exactly before p50/p99 are taken. Load goes to 127.0.0.1 only, bounded in time.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "wrk" / "post.lua"
HOST = "127.0.0.1"


# --- the load generator --------------------------------------------------------------------------------------------

def ensure_wrk(log) -> str | None:
    """wrk's path; installs Debian's package when missing and we are root. None: use the Python client."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log("wrk is not installed and cannot be installed here (needs root and apt-get)")
        return None
    log("wrk not found: installing Debian's package (apt-get install -y wrk)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-qq", "wrk"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
                           check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
        if shutil.which("wrk"):
            return shutil.which("wrk")
    log("could not install wrk")
    return None


@dataclass
class Run:
    """One load run (or several merged)."""
    requests: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    hist: dict[int, int] = field(default_factory=dict)     # latency in microseconds -> count
    runs: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, p: float) -> float:
        """Microseconds. Nearest rank over the histogram (as wrk does)."""
        total = sum(self.hist.values())
        if not total:
            return float("nan")
        rank = max(1, int(round(p / 100 * total + 0.5)) if p < 100 else total)
        rank = min(rank, total)
        seen = 0
        for value in sorted(self.hist):
            seen += self.hist[value]
            if seen >= rank:
                return float(value)
        return float(max(self.hist))

    def merge(self, other: "Run") -> "Run":
        out = Run(self.requests + other.requests, self.seconds + other.seconds, dict(self.errors), dict(self.hist),
                  self.runs + other.runs)
        for k, v in other.errors.items():
            out.errors[k] = out.errors.get(k, 0) + v
        for k, v in other.hist.items():
            out.hist[k] = out.hist.get(k, 0) + v
        return out


def wrk_run(wrk: str, url: str, body_file: Path, connections: int, seconds: float, threads: int = 1) -> Run:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), url]
    proc = subprocess.run(cmd, env=dict(os.environ, BENCH_BODY=str(body_file)), capture_output=True, text=True,
                          timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    data = json.loads(line[len("BENCH_JSON "):])
    # wrk counts non-2xx/3xx answers in errors.status; every kind of error makes a run invalid (see run.py).
    return Run(data["requests"], data["duration_us"] / 1e6, {k: v for k, v in data["errors"].items() if v},
               {int(v): int(c) for v, c in data["hist"]}, 1)


async def _client(host: str, port: int, request: bytes, deadline: float, run: Run) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            us = int((time.perf_counter() - t0) * 1e6)
            run.requests += 1
            run.hist[us] = run.hist.get(us, 0) + 1
            if not 200 <= status < 400:
                run.errors["status"] = run.errors.get("status", 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        run.errors["read"] = run.errors.get("read", 0) + 1
    finally:
        writer.close()


def python_run(url: str, body_file: Path, connections: int, seconds: float) -> Run:
    """Fallback when wrk cannot be had: asyncio keep-alive connections (slower than wrk; it shares the CPU)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    body = body_file.read_bytes()
    request = (f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
               f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    run = Run(runs=1)

    async def main() -> None:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_client(host, int(port), request, deadline, run) for _ in range(connections)))
        run.seconds = time.perf_counter() - start

    asyncio.run(main())
    return run


class LoadGenerator:
    def __init__(self, log, force_python: bool = False):
        self.wrk = None if force_python else ensure_wrk(log)
        self.name = "wrk" if self.wrk else "python-asyncio"
        if not self.wrk:
            log("load generator: the Python asyncio client (wrk unavailable); its own CPU use lowers every figure")

    def run(self, url: str, body_file: Path, connections: int, seconds: float) -> Run:
        if self.wrk:
            return wrk_run(self.wrk, url, body_file, connections, seconds)
        return python_run(url, body_file, connections, seconds)


# --- the server ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Server:
    """`python -m uvicorn bench.app:app` on 127.0.0.1:<free port> with N workers; stopped on exit."""

    def __init__(self, workers: int = 1, app: str = "bench.app:app"):
        self.workers, self.app = workers, app
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / "bench" / "results" / f"server-{self.workers}w-{self.port}.log"

    def __enter__(self) -> "Server":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "uvicorn", self.app, "--host", HOST, "--port", str(self.port),
               "--workers", str(self.workers), "--log-level", "warning", "--no-access-log",
               "--loop", "uvloop", "--http", "httptools"]          # as service.serve runs it (uvicorn_config)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            if self.ready():
                return self
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server not ready after 180 s; see {self.log_path}")

    def env(self) -> dict[str, str]:
        """The embedded default configuration (open, SQLite), with the stores in bench/results/ (a fresh file per
        server, removed on exit) and a throwaway audit HMAC key, so a benchmark never writes into var/."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("API_KEYS_FILE", "AUTH_ISSUERS_FILE", "CDS_ISSUERS_FILE", "LDN_ENV"))}
        self.db_files = [self.log_path.with_suffix(".audit.db")]      # audit trail, issued cards, feedback
        env["DATABASE_URL"] = f"sqlite:///{self.db_files[0]}"
        env["AUDIT_HMAC_SECRET"] = secrets.token_hex(32)      # not the development key file in var/
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def ready(self) -> bool:
        if self.workers > 1:    # every worker must have loaded the knowledge
            return self._all_workers_ready()
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _all_workers_ready(self) -> bool:
        """Each worker answers only once it has loaded the app: ready when every worker's pid has answered."""
        seen = set()
        for _ in range(20 * self.workers):
            try:
                with urllib.request.urlopen(self.base + "/bench/baseline/pid", timeout=2) as r:
                    seen.add(json.loads(r.read()))
            except (OSError, urllib.error.URLError, ValueError):
                return False
            if len(seen) >= self.workers:
                return True
        return False

    def pids(self) -> list[int]:
        if not self.proc:
            return []
        return children(self.proc.pid) if self.workers > 1 else [self.proc.pid]

    def rss_kib(self) -> int:
        return sum(rss_kib(p) or 0 for p in self.pids())

    def post(self, path: str, body: bytes, timeout: float = 30) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, None

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)   # the session this Popen started, nothing else
                self.proc.wait(timeout=10)
        if self.log_path.exists() and self.log_path.stat().st_size == 0:
            self.log_path.unlink()
        for f in getattr(self, "db_files", []):
            for extra in ("", "-journal", "-wal", "-shm"):
                Path(str(f) + extra).unlink(missing_ok=True)
