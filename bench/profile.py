"""Profiles behind the benchmark's figures (not part of `make bench`).

    .venv/bin/python -m bench.profile evaluate [small|typical|large]   # cProfile of Evaluator.evaluate
    .venv/bin/python -m bench.profile asgi [evaluations|order-checks|order-sign] [--profile]
    .venv/bin/python -m bench.profile ab [--rounds 8] [--n 150]     # order-sign against its bare floor, in-process
    .venv/bin/python -m bench.profile ir [--n 200]                  # the same in instructions (valgrind): exact

`ab` alternates blocks of order-sign and of the bare parse-only route through the same ASGI app and prints the
medians of the blocks and the bare route's rate as a share of order-sign's (a noisy machine hurts both alike).
`ir` counts the instructions (valgrind's cachegrind) of order-sign and of the bare route: a run of 20 calls and
one of 20 + n, the difference divided by n, so start-up cancels out; PYTHONHASHSEED fixed, audit writers not
started (what a batch costs depends on its size, which depends on timing; the records wait in their queues). Counts
do not move with the machine's load as times do (here, +-30% between blocks): same tree, same count to ~0.1%;
unrelated changes can move it ~3% (memory layout, collector timing). About two minutes per run (Debian's
`valgrind`).
`asgi` sends the benchmark's request bodies through bench.app's ASGI application in this process, one after the
other (no sockets, no concurrency): ms per request for the endpoint and for its baseline, so the difference is the
service's own work plus its thread-pool hops. `--profile` adds a cProfile of the endpoint (main thread only: the
parts FastAPI runs in its thread pool show up as waits; py-spy on a running `make bench` server sees all threads:
`py-spy record --gil -p <pid>`).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import time
from typing import Any

from .fixtures import bodies

ENDPOINTS = {"evaluations": ("/v1/evaluations", "/bench/baseline/evaluations", "evaluation"),
             "order-checks": ("/v1/order-checks", "/bench/baseline/order-checks", "order_check"),
             "order-sign": ("/cds-services/ldn-order-sign", "/bench/baseline/cds-services/order-sign", "order_sign")}


def _stats(prof: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def profile_evaluate(context: str, n: int, top: int) -> None:
    from service.core.context import PatientContext
    from service.core.decision import Evaluator
    from service.knowledge.base import load_knowledge

    from .contexts import CONTEXTS
    ev = Evaluator(load_knowledge())
    ctx = PatientContext.model_validate(CONTEXTS[context])
    for _ in range(300):
        ev.evaluate(ctx)
    t0 = time.perf_counter()
    for _ in range(n):
        ev.evaluate(ctx)
    print(f"Evaluator.evaluate({context}): {(time.perf_counter() - t0) / n * 1e6:.0f} us/call unprofiled")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        ev.evaluate(ctx)
    prof.disable()
    print(_stats(prof, top))


async def _call(app: Any, path: str, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent, status = False, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def profile_asgi(endpoint: str, n: int, top: int, with_profile: bool) -> None:
    import os
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ldn-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/audit.db")
    os.environ.setdefault("AUDIT_HMAC_SECRET", "bench-profile-throwaway-key")
    from .app import app
    path, base_path, fixture = ENDPOINTS[endpoint]
    body = json.dumps(bodies()[fixture]).encode()

    async def run(p: str, count: int) -> float:
        for _ in range(30):
            status = await _call(app, p, body)
            if status != 200:
                raise SystemExit(f"{p} answered {status}")
        t0 = time.perf_counter()
        for _ in range(count):
            await _call(app, p, body)
        return (time.perf_counter() - t0) / count * 1000

    async def main() -> None:
        for p in (path, base_path, path, base_path):
            print(f"{p:45s} {await run(p, n):7.2f} ms/request (in-process ASGI, sequential)")
        if with_profile:
            prof = cProfile.Profile()
            prof.enable()
            await run(path, n)
            prof.disable()
            print(_stats(prof, top))

    asyncio.run(main())


def ab_order_sign(rounds: int, n: int) -> None:
    import os
    import statistics
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ldn-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/audit.db")
    os.environ.setdefault("AUDIT_HMAC_SECRET", "bench-profile-throwaway-key")
    from .app import app
    hook, bare = ENDPOINTS["order-sign"][0], "/bench/baseline/bare/order-sign"
    body = json.dumps(bodies()["order_sign"], separators=(",", ":")).encode()

    async def main() -> None:
        async with app.router.lifespan_context(app):     # the audit writers run, as in the server
            for path in (hook, bare):
                for _ in range(200):
                    if await _call(app, path, body) != 200:
                        raise SystemExit(f"{path} did not answer 200")
            us: dict[str, list[float]] = {hook: [], bare: []}
            for _ in range(rounds):
                for path in (hook, bare):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        await _call(app, path, body)
                    us[path].append((time.perf_counter() - t0) / n * 1e6)
            h, b = statistics.median(us[hook]), statistics.median(us[bare])
            print(f"order-sign {h:.0f} us, bare floor {b:.0f} us per request (medians of {rounds} blocks of {n}); "
                  f"bare / order-sign = {b / h:.0%} (in-process: no sockets, no HTTP parsing)")

    asyncio.run(main())


def _in_app(path: str, n: int) -> None:
    """n sequential calls of `path` through bench.app (the child process `ir` counts; no lifespan: see above)."""
    import os
    import tempfile
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='ldn-bench-')}/audit.db")
    os.environ.setdefault("AUDIT_HMAC_SECRET", "bench-profile-throwaway-key")
    from .app import app
    body = json.dumps(bodies()["order_sign"], separators=(",", ":")).encode()

    async def calls() -> None:
        for _ in range(n):
            if await _call(app, path, body) != 200:
                raise SystemExit(f"{path} did not answer 200")
    asyncio.run(calls())


def _instructions(path: str, n: int) -> int:
    import os
    import re
    import subprocess
    import sys
    run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                          sys.executable, "-m", "bench.profile", "calls", path, str(n)],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind: {run.stderr[-500:]}")
    return int(found[1].replace(",", ""))


def ir_order_sign(n: int) -> None:
    import shutil
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.profile ir needs valgrind (Debian: apt-get install valgrind)")
    for path in (ENDPOINTS["order-sign"][0], "/bench/baseline/bare/order-sign"):
        per_call = (_instructions(path, 20 + n) - _instructions(path, 20)) / n
        print(f"{path:45s} {per_call / 1e6:6.2f} M instructions per request (valgrind, {n} calls)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("context", nargs="?", default="typical", choices=("small", "typical", "large"))
    c = sub.add_parser("calls")             # what `ir` runs under valgrind
    c.add_argument("path")
    c.add_argument("n", type=int)
    i = sub.add_parser("ir")
    i.add_argument("--n", type=int, default=200)
    b = sub.add_parser("ab")
    b.add_argument("--rounds", type=int, default=8)
    b.add_argument("--n", type=int, default=150)
    a = sub.add_parser("asgi")
    a.add_argument("endpoint", nargs="?", default="evaluations", choices=tuple(ENDPOINTS))
    a.add_argument("--profile", action="store_true")
    for s in (e, a):
        s.add_argument("--n", type=int, default=1000)
        s.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    if args.what == "ab":
        ab_order_sign(args.rounds, args.n)
    elif args.what == "calls":
        _in_app(args.path, args.n)
    elif args.what == "ir":
        ir_order_sign(args.n)
    elif args.what == "evaluate":
        profile_evaluate(args.context, args.n, args.top)
    else:
        profile_asgi(args.endpoint, args.n, args.top, args.profile)


if __name__ == "__main__":
    main()
