"""A reference interpreter of OUR condition language, independent of durable-rules and of
service/knowledge/conditions.py (service/authoring/trace.py, which `ldn-rules explain` shows), plus hypothesis
strategies over the fact vocabulary.

Semantics (the contract of service/knowledge/conditions.py):
  * {all: [...]} / {any: [...]}: conjunction / disjunction of the sub-conditions;
  * {fact: path, exists: b}: the dotted path is present in the fact (b=true) or absent (b=false);
  * any other comparison on an ABSENT path is false (is_not included);
  * is / is_not: equality of values of the same kind (booleans are not numbers, 5 == 5.0);
  * lt, lte, gt, gte: numeric order; in: membership (by the same equality as `is`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from hypothesis import strategies as st

from service.authoring.trace import fired_names, holds  # noqa: F401  (holds: the tests call oracle.holds)

ROOT = Path(__file__).resolve().parents[2]
FACT_SCHEMA = ROOT / "schemas" / "facts.schema.json"


# ---------------------------------------------------------------------------------------------------------------
# The interpreter: the one `ldn-rules explain` traces with (moved there, so its trees are the ones checked here)

# The rule names the engine must report: rule id when `when` holds, `id#i` when escalation i holds too.
expected_fired = fired_names


def walk_leaves(condition: dict[str, Any]) -> Iterable[dict[str, Any]]:
    if "all" in condition or "any" in condition:
        for c in condition.get("all") or condition.get("any"):
            yield from walk_leaves(c)
    else:
        yield condition


# ---------------------------------------------------------------------------------------------------------------
# The vocabulary, read from the schema here (not through service code)

def vocabulary() -> dict[str, tuple[str, tuple[Any, ...] | None]]:
    """{dotted path: (kind, enum or None)} with kind one of boolean, integer, number, string."""
    schema = json.loads(FACT_SCHEMA.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, tuple[Any, ...] | None]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if sub.get("type") == "object":
                walk(sub, f"{prefix}{name}.")
            elif "enum" in sub:
                out[prefix + name] = ("string", tuple(sub["enum"]))
            else:
                out[prefix + name] = (sub["type"], None)
    walk(schema, "")
    return out


VOCABULARY = vocabulary()

# Day counts the brief and the rules care about, including the negative ones (start date in the future).
DAY_BOUNDARIES = (-30, -14, -3, -2, -1, 0, 1, 2, 3, 13, 14, 15, 29, 30, 31, 365)
NUMBER_BOUNDARIES = (0, 0.5, 1, 1.0, 1.5, 3, 4.5, 5, 5.0, 9, 16, 49.9, 50, 50.0, 60, 60.0, 100)


def json_safe_float(x: float) -> bool:
    """durable-rules 2.0.28 rejects (error 204) JSON numbers written with an exponent and no '.', such as
    Python's repr of 1e-05 or 1e+16 (see test_engine_oracle.py::test_exponent_floats_never_give_a_wrong_answer).
    Plain-notation floats are what this generator produces for the agreement tests."""
    return math.isfinite(x) and "e" not in repr(x)


def neighbours(value: float | int, integer: bool) -> list[float | int]:
    if integer:
        return [int(value) - 1, int(value), int(value) + 1] if float(value).is_integer() else \
            [math.floor(value), math.ceil(value)]
    out = [value, math.nextafter(value, math.inf), math.nextafter(value, -math.inf), value + 0.5, value - 0.5]
    if float(value).is_integer():
        out += [int(value), float(value)]
    return [v for v in out if json_safe_float(float(v))]


def boundaries_from(conditions: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every operand in the conditions, per fact path, with its numeric neighbours."""
    out: dict[str, list[Any]] = {}
    for condition in conditions:
        for leaf in walk_leaves(condition):
            path = leaf["fact"]
            (op,) = [k for k in leaf if k != "fact"]
            kind, _ = VOCABULARY[path]
            values = leaf[op] if op == "in" else [leaf[op]]
            for v in values:
                if op == "exists":
                    continue
                if kind in ("number", "integer"):
                    out.setdefault(path, []).extend(neighbours(v, kind == "integer"))
                else:
                    out.setdefault(path, []).append(v)
    return {k: sorted(set(v), key=repr) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------------------
# Strategies

TIMINGS = ("morning", "bedtime", "at bedtime", "qhs", "evening", "", "nocte", "Bedtime", "mañana", 'say "qhs"')


def plain_floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).filter(json_safe_float)


def value_strategy(path: str, extra: Iterable[Any] = ()) -> st.SearchStrategy[Any]:
    kind, enum = VOCABULARY[path]
    extra = [v for v in extra if v is not None]
    if enum is not None:
        return st.sampled_from(enum)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        pool = sorted(set(TIMINGS) | {v for v in extra if isinstance(v, str)})
        return st.one_of(st.sampled_from(pool), st.text(max_size=12))
    if kind == "integer":
        pool = sorted({*DAY_BOUNDARIES, *(v for v in extra if isinstance(v, int) and not isinstance(v, bool))})
        return st.one_of(st.sampled_from(pool), st.integers(-100_000, 100_000))
    pool = sorted({*NUMBER_BOUNDARIES, *(v for v in extra if not isinstance(v, (bool, str)))}, key=float)
    return st.one_of(st.sampled_from(pool), st.integers(-1000, 1000), plain_floats(-1000.0, 1000.0))


def facts(extra: dict[str, list[Any]] | None = None, *, present: float = 0.75) -> st.SearchStrategy[dict]:
    """Nested fact dicts over the whole vocabulary: every object and every leaf present or absent at random
    (present with probability ~`present`), values of the schema type, biased towards `extra` boundary values."""
    extra = extra or {}
    groups: dict[str, list[str]] = {}
    for path in VOCABULARY:
        head, _, leaf = path.partition(".")
        groups.setdefault(head, []).append(leaf)
    weights = st.integers(0, 99).map(lambda n: n < present * 100)
    values = {path: value_strategy(path, extra.get(path, ())) for path in VOCABULARY}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        fact: dict[str, Any] = {}
        for head, leaves in groups.items():
            if not draw(weights):
                continue
            obj = fact[head] = {}
            for leaf in leaves:
                if draw(weights):
                    obj[leaf] = draw(values[f"{head}.{leaf}"])
        return fact
    return build()


OPS_BY_KIND = {
    "boolean": ("is", "is_not", "exists"),
    "string": ("is", "is_not", "in", "exists"),
    "integer": ("is", "is_not", "lt", "lte", "gt", "gte", "in", "exists"),
    "number": ("is", "is_not", "lt", "lte", "gt", "gte", "in", "exists"),
}


@st.composite
def leaf_conditions(draw: st.DrawFn) -> dict[str, Any]:
    """One type-correct leaf of our language (operands as the rule schema allows: `in` holds numbers/strings)."""
    path = draw(st.sampled_from(sorted(VOCABULARY)))
    kind, enum = VOCABULARY[path]
    op = draw(st.sampled_from(OPS_BY_KIND[kind]))
    if op == "exists":
        return {"fact": path, "exists": draw(st.booleans())}
    operand = value_strategy(path)
    if kind == "string" and enum is None:
        operand = st.sampled_from(TIMINGS)
    if op == "in":
        return {"fact": path, "in": draw(st.lists(operand, min_size=1, max_size=4))}
    return {"fact": path, op: draw(operand)}


def conditions(max_leaves: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaf_conditions(),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(children, min_size=1, max_size=3).map(lambda cs: {"any": cs})),
        max_leaves=max_leaves)


def depth(condition: dict[str, Any]) -> int:
    if "all" in condition or "any" in condition:
        return 1 + max(depth(c) for c in condition.get("all") or condition.get("any"))
    return 0
