"""The garbage collector of a worker that runs for days: what start-up built (the knowledge base, the compiled
rules, the terminology, the app) is frozen out of the collections, and young collections run less often.

Without it every full collection walked the whole knowledge base: pauses of up to ~150 ms, which every request and
probe in flight waited out, and ~8% of order-sign's time went to the collector (bench/README.md, "Issue 13,
second pass"). Reference counting still frees nearly everything a request allocates; the collector is only for
cycles, and those a request leaves are few.
"""
from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000     # allocations between young collections (CPython's default: 700)


def settle() -> None:
    """Call once per worker, after the app is built and before it serves."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
