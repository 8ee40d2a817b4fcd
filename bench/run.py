"""`make bench`: every figure of the performance issue, measured on this machine, printed as one table and
written to bench/results/latest.json.

    .venv/bin/python -m bench.run [--quick] [--seconds 5] [--rounds 2] [--connections 32] [--soak 100000]

1. In-process evaluation latency (small, typical, large contexts): full Evaluator.evaluate, the engine alone, and
   the hand-written floor (bench/floor.py) on the same fact, after checking the floor fires what the engine fires.
2. HTTP: POST /v1/evaluations, POST /v1/order-checks and CDS Hooks order-sign (58-resource prefetch), each beside
   its baseline route (bench/app.py: same body model, parse + validate + echo), measured A/B/A/B at a fixed
   concurrency with wrk against uvicorn on 127.0.0.1.
3. Memory: RSS after warm-up and after 100k in-process evaluations.
4. Scale: POST /v1/evaluations throughput with 1 and 2 uvicorn workers, measured A/B/A/B.
5. Soak: order-sign at one connection for 60 s on a fresh server: RSS before and after, /healthz probed throughout.
Order-sign is also measured against a bare floor (its body parsed as JSON, nothing else).
Nothing is computed from assumptions: every value in the table is measured in this run. A benchmark is not a
test: nothing here fails `make test`, and the exit status is 0 whether targets are met or not (1 only when the
harness itself could not measure).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from service.core.decision import Evaluator
from service.knowledge.base import load_knowledge

from . import floor as floor_mod
from . import inprocess
from .contexts import CONTEXTS
from .fixtures import bodies, resource_count
from .load import ROOT, LoadGenerator, Run, Server

RESULTS = ROOT / "bench" / "results"
TARGETS = {
    "inprocess_p50_typical_us": 150.0,
    "inprocess_p50_large_us": 1000.0,
    "http_ratio_min": 0.70,
    "cds_p99_ms": 25.0,
    "rss_growth_pct": 5.0,
    "cds_bare_ratio_min": 0.50,        # order-sign against the bare floor (the body parsed as JSON, nothing else)
    "soak_rss_growth_mb": 50.0,        # over the order-sign soak (60 s at one connection)
    "soak_healthz_p99_ms": 100.0,      # /healthz during it
}
BARE_ORDER_SIGN = "/bench/baseline/bare/order-sign"
HEALTH_PROBE_INTERVAL_S = 0.05
# endpoint key -> (label, path, its baseline path, fixture, a check that the answer is the real thing)
ENDPOINTS = {
    "evaluations": ("POST /v1/evaluations", "/v1/evaluations", "/bench/baseline/evaluations", "evaluation",
                    lambda b: isinstance(b, dict) and isinstance(b.get("advisories"), list) and b["advisories"]),
    "order-checks": ("POST /v1/order-checks", "/v1/order-checks", "/bench/baseline/order-checks", "order_check",
                     lambda b: isinstance(b, dict) and b.get("verdict") in ("stop", "review", "pass")),
    "order-sign": ("CDS Hooks order-sign", "/cds-services/ldn-order-sign", "/bench/baseline/cds-services/order-sign",
                   "order_sign", lambda b: isinstance(b, dict) and isinstance(b.get("cards"), list) and b["cards"]),
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


# --- 1 and 3: in-process ---------------------------------------------------------------------------------------

def part_inprocess(args: argparse.Namespace) -> dict[str, Any]:
    log("in-process: loading knowledge, compiling the engine")
    ev = Evaluator(load_knowledge())
    agrees, problems = floor_mod.check(ev.kb, ev.engine, CONTEXTS.items())
    log(f"floor check: {'floor fires exactly what the engine fires' if agrees else 'DISAGREES: ' + '; '.join(problems)}")
    out: dict[str, Any] = {"knowledge_version": ev.kb.version, "floor_agrees": agrees, "floor_problems": problems,
                           "floor_checked_contexts": len(CONTEXTS) + sum(len(r.tests) for r in ev.kb.rules.values()),
                           "latency": {}}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name, body in CONTEXTS.items():
        log(f"in-process latency: {name} context ({args.n} calls each: full, engine, floor)")
        out["latency"][name] = inprocess.context_latency(ev, body, args.n)
    out["cpu_share"] = round((time.process_time() - cpu0) / (time.perf_counter() - wall0), 2)
    if args.soak:
        log(f"memory: {args.soak} evaluations after warm-up")
        out["memory"] = inprocess.soak(ev, args.soak)
    return out


# --- 2 and 4: HTTP -----------------------------------------------------------------------------------------------

def _probe(server: Server, path: str, body: bytes, check=None) -> tuple[bool, str]:
    status, answer = server.post(path, body)
    if status == 404:
        return False, "not available (404: route not mounted)"
    if status != 200:
        return False, f"not measurable: answered {status} {str(answer)[:200]}"
    if check is not None and not check(answer):
        return False, f"not measurable: unexpected answer {str(answer)[:200]}"
    return True, "ok"


def _measure_ab(gen: LoadGenerator, subjects: dict[str, tuple[Server, str, Path]], args: argparse.Namespace,
                connections: int | None = None, rounds: int | None = None, seconds: float | None = None,
                warmup: bool = True) -> dict[str, dict[str, Any]]:
    """Warm each subject up, then alternate them (A/B/A/B...) for `rounds` rounds; merge each one's runs."""
    connections = connections or args.connections
    rounds, seconds = rounds or args.rounds, seconds or args.seconds
    merged: dict[str, Run] = {k: Run() for k in subjects}
    cpu: dict[str, float] = {k: 0.0 for k in subjects}
    if warmup:
        for key, (server, path, body) in subjects.items():
            gen.run(server.base + path, body, connections, args.warmup)
    for _ in range(rounds):
        for key, (server, path, body) in subjects.items():
            pids = server.pids()
            c0 = cpu_seconds(pids)
            merged[key] = merged[key].merge(gen.run(server.base + path, body, connections, seconds))
            cpu[key] += cpu_seconds(pids) - c0
    out = {}
    for key, run in merged.items():
        out[key] = {"requests": run.requests, "seconds": round(run.seconds, 2), "rps": round(run.rps, 1),
                    "p50_ms": round(run.percentile(50) / 1000, 2), "p99_ms": round(run.percentile(99) / 1000, 2),
                    "errors": run.errors, "runs": run.runs,
                    "server_cpu_share": round(cpu[key] / run.seconds, 2) if run.seconds else None}
    return out


def part_http(args: argparse.Namespace, fixture_files: dict[str, Path]) -> dict[str, Any]:
    gen = LoadGenerator(log, force_python=args.python_client)
    out: dict[str, Any] = {"load_generator": gen.name, "connections": args.connections, "seconds": args.seconds,
                           "rounds": args.rounds, "warmup_seconds": args.warmup, "endpoints": {}}
    if gen.wrk:
        out["wrk"] = (subprocess.run([gen.wrk, "--version"], capture_output=True, text=True).stdout.splitlines()
                      or [""])[0].strip()
    log("HTTP: starting uvicorn (1 worker) with bench.app")
    with Server(1) as one:
        out["server_rss_kib_start"] = one.rss_kib()
        for key, (label, path, base_path, fixture, check) in ENDPOINTS.items():
            body = fixture_files[fixture]
            ok, why = _probe(one, path, body.read_bytes(), check)
            base_ok, base_why = _probe(one, base_path, body.read_bytes())
            entry: dict[str, Any] = {"label": label, "path": path, "baseline": base_path,
                                     "body_bytes": body.stat().st_size}
            out["endpoints"][key] = entry
            if not (ok and base_ok):
                entry["status"] = why if not ok else f"baseline {base_why}"
                log(f"{label}: {entry['status']}")
                continue
            log(f"{label}: A/B against its baseline, {args.rounds} x {args.seconds}s each at {args.connections} "
                "connections")
            entry["status"] = "ok"
            subjects = {"endpoint": (one, path, body), "floor": (one, base_path, body)}
            if key == "order-sign" and _probe(one, BARE_ORDER_SIGN, body.read_bytes())[0]:
                subjects["bare"] = (one, BARE_ORDER_SIGN, body)
            res = _measure_ab(gen, subjects, args)
            entry.update(res)
            entry["ratio"] = round(res["endpoint"]["rps"] / res["floor"]["rps"], 3) if res["floor"]["rps"] else None
            if "bare" in res:
                entry["ratio_bare"] = round(res["endpoint"]["rps"] / res["bare"]["rps"], 3) if res["bare"]["rps"] \
                    else None
            if args.unloaded_seconds:
                log(f"{label}: unloaded latency (1 connection), A/B {args.unloaded_seconds}s each")
                entry["unloaded"] = _measure_ab(gen, {"endpoint": (one, path, body), "floor": (one, base_path, body)},
                                                args, connections=1, rounds=1, seconds=args.unloaded_seconds,
                                                warmup=False)
        out["server_rss_kib_after_load"] = one.rss_kib()

        if not args.no_scale:
            log("scale: starting uvicorn with 2 workers")
            with Server(2) as two:
                body = fixture_files["evaluation"]
                ok, why = _probe(two, "/v1/evaluations", body.read_bytes(), ENDPOINTS["evaluations"][4])
                if ok:
                    log(f"scale: POST /v1/evaluations, 1 vs 2 workers, A/B {args.rounds} x {args.seconds}s")
                    res = _measure_ab(gen, {"1_worker": (one, "/v1/evaluations", body),
                                            "2_workers": (two, "/v1/evaluations", body)}, args)
                    res["speedup"] = (round(res["2_workers"]["rps"] / res["1_worker"]["rps"], 2)
                                      if res["1_worker"]["rps"] else None)
                    out["scale"] = res
                else:
                    out["scale"] = {"status": why}
    return out


# --- 5: the order-sign soak ------------------------------------------------------------------------------------------

def _probe_health(base: str, stop: threading.Event, out: list[float], errors: list[str]) -> None:
    """GET /healthz every HEALTH_PROBE_INTERVAL_S until stopped: latencies in ms (a probe as a kubelet sends it)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
                r.read()
            out.append((time.perf_counter() - t0) * 1000)
        except OSError as exc:
            errors.append(type(exc).__name__)
        stop.wait(HEALTH_PROBE_INTERVAL_S)


def part_soak(args: argparse.Namespace, fixture_files: dict[str, Path]) -> dict[str, Any]:
    """A fresh server, order-sign at one connection for --soak-seconds, /healthz probed throughout: RSS before and
    after (the worker's), the probes' p50/p99, and order-sign's own p50 at one connection."""
    gen = LoadGenerator(log, force_python=args.python_client)
    body = fixture_files["order_sign"]
    log(f"soak: order-sign at 1 connection for {args.soak_seconds:g} s, /healthz probed every "
        f"{HEALTH_PROBE_INTERVAL_S * 1000:.0f} ms")
    with Server(1) as server:
        path = ENDPOINTS["order-sign"][1]
        ok, why = _probe(server, path, body.read_bytes(), ENDPOINTS["order-sign"][4])
        if not ok:
            return {"status": why}
        gen.run(server.base + path, body, 1, args.warmup)
        rss_start = server.rss_kib()
        probes: list[float] = []
        errors: list[str] = []
        stop = threading.Event()
        prober = threading.Thread(target=_probe_health, args=(server.base, stop, probes, errors), daemon=True)
        prober.start()
        try:
            run = gen.run(server.base + path, body, 1, args.soak_seconds)
        finally:
            stop.set()
            prober.join(30)
        rss_end = server.rss_kib()
    probes.sort()

    def pct(p: float) -> float | None:
        return round(probes[min(len(probes) - 1, int(p / 100 * len(probes)))], 2) if probes else None
    return {"status": "ok", "seconds": args.soak_seconds, "requests": run.requests, "rps": round(run.rps, 1),
            "errors": run.errors, "p50_ms": round(run.percentile(50) / 1000, 2),
            "p99_ms": round(run.percentile(99) / 1000, 2), "rss_kib_start": rss_start, "rss_kib_end": rss_end,
            "rss_growth_mb": round((rss_end - rss_start) / 1024, 1), "healthz_probes": len(probes),
            "healthz_errors": len(errors), "healthz_p50_ms": pct(50), "healthz_p99_ms": pct(99)}


# --- the table -------------------------------------------------------------------------------------------------------

def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    r: list[tuple[str, str, str, str]] = []
    ip = result.get("inprocess")
    if ip:
        r.append(("floor = engine (fired rules)", f"{'agrees' if ip['floor_agrees'] else 'DISAGREES'} on "
                  f"{ip['floor_checked_contexts']} contexts", "agrees", _met(ip["floor_agrees"])))
        for name, lat in ip["latency"].items():
            full, eng, flo = lat["full"], lat["engine"], lat["floor"]
            target, ok = "", None
            if name == "typical":
                target, ok = f"p50 <= {TARGETS['inprocess_p50_typical_us']:.0f} us", \
                    full["p50_us"] <= TARGETS["inprocess_p50_typical_us"]
            elif name == "large":
                target, ok = f"p50 <= {TARGETS['inprocess_p50_large_us'] / 1000:g} ms", \
                    full["p50_us"] <= TARGETS["inprocess_p50_large_us"]
            r.append((f"1. in-process {name}: Evaluator.evaluate p50 / p99",
                      f"{full['p50_us']:.0f} / {full['p99_us']:.0f} us", target or "-", _met(ok)))
            r.append((f"   {name}: engine only p50 / p99", f"{eng['p50_us']:.0f} / {eng['p99_us']:.0f} us", "-", "n/a"))
            r.append((f"   {name}: floor (hand-written) p50 / p99", f"{flo['p50_us']:.1f} / {flo['p99_us']:.1f} us",
                      "-", "n/a"))
            bad = "" if ip["floor_agrees"] else " (INVALID: floor disagrees with engine)"
            r.append((f"   {name}: engine / floor, full / floor (p50)",
                      f"{lat['engine_over_floor_p50']:g}x, {lat['full_over_floor_p50']:g}x{bad}", "-", "n/a"))
    http = result.get("http")
    if http:
        conc = http["connections"]
        for key, e in http["endpoints"].items():
            if e.get("status") != "ok":
                r.append((f"2. {e['label']}", e.get("status", "not measured"), "", "n/a"))
                continue
            end, flo = e["endpoint"], e["floor"]
            invalid = end["errors"] or flo["errors"] or not e["ratio"]
            r.append((f"2. {e['label']}: throughput vs floor (c={conc})",
                      f"{end['rps']:.0f} vs {flo['rps']:.0f} req/s = {100 * (e['ratio'] or 0):.0f}%"
                      f" (server CPU {end['server_cpu_share'] or 0:.2f} / {flo['server_cpu_share'] or 0:.2f})"
                      + (f" INVALID: errors {end['errors'] or flo['errors']}" if invalid else ""),
                      f">= {100 * TARGETS['http_ratio_min']:.0f}% of floor",
                      _met(None if invalid else e["ratio"] >= TARGETS["http_ratio_min"])))
            target, ok = "-", None
            if key == "order-sign":
                target, ok = f"p99 <= {TARGETS['cds_p99_ms']:g} ms at c={conc}", end["p99_ms"] <= TARGETS["cds_p99_ms"]
                if conc != 32:
                    target += " (target is at c=32)"
            r.append((f"   {e['label']}: p50 / p99 at c={conc} (floor)",
                      f"{end['p50_ms']:.1f} / {end['p99_ms']:.1f} ms ({flo['p50_ms']:.1f} / {flo['p99_ms']:.1f})",
                      target, _met(ok)))
            if "bare" in e:
                bare = e["bare"]
                r.append((f"   {e['label']}: throughput vs bare floor (parse only, c={conc})",
                          f"{end['rps']:.0f} vs {bare['rps']:.0f} req/s = {100 * (e.get('ratio_bare') or 0):.0f}%"
                          + (f" INVALID: errors {bare['errors']}" if bare["errors"] else ""),
                          f">= {100 * TARGETS['cds_bare_ratio_min']:.0f}% of bare floor",
                          _met(None if bare["errors"] or not e.get("ratio_bare")
                               else e["ratio_bare"] >= TARGETS["cds_bare_ratio_min"])))
            un = e.get("unloaded")
            if un:
                ue, uf = un["endpoint"], un["floor"]
                r.append((f"   {e['label']}: p50 / p99 at c=1 (floor)",
                          f"{ue['p50_ms']:.1f} / {ue['p99_ms']:.1f} ms ({uf['p50_ms']:.1f} / {uf['p99_ms']:.1f})",
                          "-", "n/a"))
    mem = (ip or {}).get("memory")
    if mem:
        r.append(("3. RSS after warm-up / after evaluations",
                  f"{mem['rss_after_warmup_kib'] / 1024:.1f} / {mem['rss_after_kib'] / 1024:.1f} MiB "
                  f"({mem['evaluations']:,} evals)", "-", "n/a"))
        r.append(("   RSS growth", f"{mem['rss_growth_pct']:+.2f}%", f"<= {TARGETS['rss_growth_pct']:g}%",
                  _met(mem["rss_growth_pct"] <= TARGETS["rss_growth_pct"])))
    scale = (http or {}).get("scale")
    if scale and "speedup" in scale:
        r.append(("4. scale: POST /v1/evaluations 1 vs 2 workers",
                  f"{scale['1_worker']['rps']:.0f} vs {scale['2_workers']['rps']:.0f} req/s = "
                  f"{scale['speedup'] or 0:g}x (server CPU {scale['1_worker']['server_cpu_share'] or 0:.2f} / "
                  f"{scale['2_workers']['server_cpu_share'] or 0:.2f})"
                  + (" INVALID: errors" if scale["1_worker"]["errors"] or scale["2_workers"]["errors"] else ""),
                  "-", "n/a"))
    elif scale:
        r.append(("4. scale", scale.get("status", "not measured"), "", "n/a"))
    soak = result.get("soak")
    if soak and soak.get("status") == "ok":
        bad = " INVALID: errors" if soak["errors"] or soak["healthz_errors"] else ""
        r.append((f"5. order-sign soak {soak['seconds']:g} s at c=1: {soak['rps']:.0f} req/s, p50 / p99",
                  f"{soak['p50_ms']:.1f} / {soak['p99_ms']:.1f} ms{bad}", "-", "n/a"))
        r.append(("   RSS start / end (growth)", f"{soak['rss_kib_start'] / 1024:.0f} / {soak['rss_kib_end'] / 1024:.0f} "
                  f"MiB ({soak['rss_growth_mb']:+.1f} MiB)", f"< {TARGETS['soak_rss_growth_mb']:g} MiB growth",
                  _met(soak["rss_growth_mb"] < TARGETS["soak_rss_growth_mb"])))
        r.append((f"   /healthz during it: p50 / p99 ({soak['healthz_probes']} probes)",
                  f"{soak['healthz_p50_ms']} / {soak['healthz_p99_ms']} ms{bad}",
                  f"p99 < {TARGETS['soak_healthz_p99_ms']:g} ms",
                  _met(None if soak["healthz_p99_ms"] is None else soak["healthz_p99_ms"] < TARGETS["soak_healthz_p99_ms"])))
    elif soak:
        r.append(("5. order-sign soak", soak.get("status", "not measured"), "", "n/a"))
    return r


def table(rs: list[tuple[str, str, str, str]]) -> str:
    head = ("figure", "value", "target", "met?")
    widths = [max(len(x[i]) for x in [head, *rs]) for i in range(4)]
    line = lambda x: "  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip()   # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *(line(x) for x in rs)])


# --- main --------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs to check the harness (targets not judged)")
    p.add_argument("--n", type=int, default=4000, help="timed calls per context and subject (in-process)")
    p.add_argument("--soak", type=int, default=100_000, help="evaluations for the memory figure")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0, help="length of one measured HTTP run")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds per endpoint")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per subject")
    p.add_argument("--unloaded-seconds", type=float, default=3.0,
                   help="length of the 1-connection latency run per endpoint and floor (0: skip)")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--no-inprocess", action="store_true")
    p.add_argument("--no-scale", action="store_true")
    p.add_argument("--soak-seconds", type=float, default=60.0,
                   help="length of the order-sign soak at one connection (RSS, /healthz during it; 0: skip)")
    p.add_argument("--python-client", action="store_true", help="use the asyncio client instead of wrk")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = p.parse_args(argv)
    if args.quick:   # shorter runs, except where a length was given explicitly
        quick = {"n": 300, "soak": 5000, "seconds": 2.0, "rounds": 1, "warmup": 1.0, "unloaded_seconds": 1.0,
                 "soak_seconds": 10.0}
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)

    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fixture_dir = RESULTS / "fixtures"
    fixture_dir.mkdir(exist_ok=True)
    generated = bodies()
    fixture_files = {}
    for name, body in generated.items():
        fixture_files[name] = fixture_dir / f"{name}.json"
        fixture_files[name].write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")

    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_start": loadavg()},
        "git": {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain"))},
        "fixtures": {"order_sign_resources": resource_count(generated["order_sign"]),
                     "bytes": {k: v.stat().st_size for k, v in fixture_files.items()}},
        "targets": TARGETS,
    }
    la = result["machine"]["loadavg_start"]
    if la and la[0] > 0.5:
        log(f"warning: load average {la[0]:.2f} at start: other processes share these {os.cpu_count()} cores")
    failed = False
    try:
        if not args.no_inprocess:
            result["inprocess"] = part_inprocess(args)
        if not args.no_http:
            result["http"] = part_http(args, fixture_files)
            if args.soak_seconds:
                result["soak"] = part_soak(args, fixture_files)
    except Exception as exc:   # noqa: BLE001 - report what was measured, then fail
        log(f"harness error: {type(exc).__name__}: {exc}")
        result["error"] = f"{type(exc).__name__}: {exc}"
        failed = True
    result["machine"]["loadavg_end"] = loadavg()
    result["seconds"] = round(time.perf_counter() - started, 1)
    rs = rows(result)
    result["table"] = [dict(zip(("figure", "value", "target", "met"), x)) for x in rs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print()
    print(table(rs))
    print()
    note = "quick run: figures are indicative only. " if args.quick else ""
    ip = result.get("inprocess") or {}
    print(f"{note}Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
          f"{la[0] if la else '?'} at start, {result['machine']['loadavg_end'][0] if result['machine']['loadavg_end'] else '?'} "
          f"at end; in-process CPU share {ip.get('cpu_share', '?')} (below ~0.9 means other processes took CPU). "
          f"Load generator: {(result.get('http') or {}).get('load_generator', '-')}. Took {result['seconds']:.0f} s.")
    print(f"Wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
