"""In-process evaluation: latency per reference context against the rule-evaluation floor, and memory over a soak.

    .venv/bin/python -m bench.inprocess [--n 4000] [--soak 100000]

Three things are timed per context, interleaved in blocks (A/B/C/A/B/C...) so that a noisy neighbour hurts all
three alike:
  * full:   Evaluator.evaluate(ctx): facts, engine, advisories (what every API calls);
  * engine: DurableEngine.evaluate(fact) on the already-derived fact (the rules engine alone);
  * floor:  bench/floor.py's hand-written function on the same fact (the same conditions in plain Python).
Each call is timed on its own (perf_counter_ns), garbage collection left on as in the service.
"""
from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any, Callable

from service.core.context import PatientContext
from service.core.decision import Evaluator
from service.core.facts import derive_facts
from service.knowledge.base import load_knowledge

from . import floor as floor_mod
from .contexts import CONTEXTS

BLOCK = 200


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(samples_ns: list[int]) -> dict[str, float]:
    us = [s / 1000 for s in samples_ns]
    return {"n": len(us), "p50_us": round(percentile(us, 50), 2), "p99_us": round(percentile(us, 99), 2),
            "mean_us": round(sum(us) / len(us), 2)}


def _time_block(fn: Callable[[], Any], n: int, out: list[int]) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)


def context_latency(ev: Evaluator, body: dict[str, Any], n: int) -> dict[str, Any]:
    ctx = PatientContext.model_validate(body)
    fact = derive_facts(ctx, ev.kb.terminology, ctx.as_of).fact
    floor = floor_mod.make_floor(ev.kb)
    engine = ev.engine
    subjects: dict[str, Callable[[], Any]] = {
        "full": lambda: ev.evaluate(ctx),
        "engine": lambda: engine.evaluate(fact),
        "floor": lambda: floor(fact),
    }
    samples: dict[str, list[int]] = {k: [] for k in subjects}
    for fn in subjects.values():          # warm-up: memo, caches, branch predictors
        for _ in range(300):
            fn()
    done = 0
    while done < n:
        block = min(BLOCK, n - done)
        for name, fn in subjects.items():
            _time_block(fn, block, samples[name])
        done += block
    out = {name: summary(s) for name, s in samples.items()}
    out["fired"] = sorted(engine.evaluate(fact))
    out["engine_over_floor_p50"] = round(out["engine"]["p50_us"] / out["floor"]["p50_us"], 1)
    out["full_over_floor_p50"] = round(out["full"]["p50_us"] / out["floor"]["p50_us"], 1)
    return out


def soak(ev: Evaluator, n: int, warmup: int = 5000) -> dict[str, Any]:
    """RSS after a warm-up and after n more evaluations (the three reference contexts in turn)."""
    ctxs = [PatientContext.model_validate(b) for b in CONTEXTS.values()]
    for i in range(warmup):
        ev.evaluate(ctxs[i % 3])
    gc.collect()
    before = rss_kib()
    t0 = time.perf_counter()
    for i in range(n):
        ev.evaluate(ctxs[i % 3])
    elapsed = time.perf_counter() - t0
    gc.collect()
    after = rss_kib()
    return {"evaluations": n, "warmup_evaluations": warmup, "rss_after_warmup_kib": before, "rss_after_kib": after,
            "rss_growth_pct": round(100 * (after - before) / before, 2), "evals_per_s": round(n / elapsed),
            "seconds": round(elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--soak", type=int, default=100000)
    args = parser.parse_args()
    ev = Evaluator(load_knowledge())
    agrees, problems = floor_mod.check(ev.kb, ev.engine, CONTEXTS.items())
    result: dict[str, Any] = {"floor_agrees": agrees, "floor_problems": problems,
                              "latency": {name: context_latency(ev, body, args.n) for name, body in CONTEXTS.items()}}
    if args.soak:
        result["memory"] = soak(ev, args.soak)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
