"""In-process evaluation: latency per context and memory over many evaluations.

    .venv/bin/python -m bench.inprocess [--n 20000] [--soak 100000]
"""
from __future__ import annotations

import argparse
import gc
import json
import time

from service.context import PatientContext
from service.decision import Evaluator
from service.knowledge.base import load_knowledge

from .contexts import CONTEXTS


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latency(evaluator: Evaluator, body: dict, n: int) -> dict[str, float]:
    ctx = PatientContext.model_validate(body)
    for _ in range(500):
        evaluator.evaluate(ctx)
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            evaluator.evaluate(ctx)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return {"p50_us": round(percentile(samples, 50), 1), "p99_us": round(percentile(samples, 99), 1),
            "evals_per_s": round(1e6 / (sum(samples) / len(samples)))}


def soak(evaluator: Evaluator, n: int) -> dict[str, float]:
    ctxs = [PatientContext.model_validate(b) for b in CONTEXTS.values()]
    for i in range(5000):
        evaluator.evaluate(ctxs[i % 3])
    gc.collect()
    before = rss_kib()
    t0 = time.perf_counter()
    for i in range(n):
        evaluator.evaluate(ctxs[i % 3])
    elapsed = time.perf_counter() - t0
    gc.collect()
    after = rss_kib()
    return {"evaluations": n, "rss_after_warmup_kib": before, "rss_after_kib": after,
            "rss_growth_pct": round(100 * (after - before) / before, 2), "evals_per_s": round(n / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--soak", type=int, default=100000)
    args = parser.parse_args()
    evaluator = Evaluator(load_knowledge())
    result = {"latency": {name: latency(evaluator, body, args.n) for name, body in CONTEXTS.items()},
              "memory": soak(evaluator, args.soak)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
