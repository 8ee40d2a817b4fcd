"""The floor for rule evaluation: the rule files' conditions generated as one plain Python function.

`make_floor(kb)` returns `floor(fact) -> frozenset of fired rule names`, the same names DurableEngine.evaluate
returns (`<rule id>` and `<rule id>#<escalation index>`), applied to the same fact dict (derive_facts(...).fact).
Its source is generated from the loaded rules (conditions with their parameters resolved: dict lookups and
comparisons inline, as one would write them by hand), so it covers whatever rules exist: a new rule, a changed
condition or a re-tuned threshold needs no change here. `check(kb, engine)` proves the two agree (on the reference
contexts and on every rule's own test cases) before any floor figure is reported.

Semantics as in the condition language: a comparison on an absent fact is false (is_not too); `exists` tests
presence; `is` compares type and value (true is not 1).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable

from service.core.context import PatientContext
from service.core.engine import DurableEngine, rule_name
from service.core.facts import derive_facts
from service.knowledge.base import KnowledgeBase

_CMP = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _value(path: str) -> str:
    """Source of the fact's value at a dotted path, M when absent (facts nest dicts only)."""
    *parents, leaf = path.split(".")
    return "fact" + "".join(f".get({k!r}, E)" for k in parents) + f".get({leaf!r}, M)"


def _same(x: str, want: Any) -> str:
    if isinstance(want, bool):
        return f"({x} is {want!r})"
    if isinstance(want, str):
        return f"({x} == {want!r})"
    return f"({x} == {want!r} and {x}.__class__ is not bool)"


def _source(condition: dict[str, Any]) -> str:
    """A condition as a Python expression over `fact`."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        return "(" + (" and " if key == "all" else " or ").join(_source(c) for c in condition[key]) + ")"
    x = _value(condition["fact"])
    (op,) = [k for k in condition if k != "fact"]
    want = condition[op]
    if op == "exists":
        return f"(({x} is not M) is {want!r})"
    if op == "is":
        return _same(x, want)
    if op == "is_not":
        return f"({x} is not M and not {_same(x, want)})"
    if op == "in":
        return "(" + " or ".join(_same(x, w) for w in want) + ")"
    return f"({x}.__class__ in NUM and {x} {_CMP[op]} {want!r})"


def floor_source(kb: KnowledgeBase) -> str:
    lines = ["def floor(fact):", "    out = []"]
    for rule in kb.active_rules:
        base = _source(rule.when)
        lines += [f"    if {base}:", f"        out.append({rule_name(rule.id)!r})"]
        for i, esc in enumerate(rule.escalations):
            lines += [f"        if {_source(esc.when)}:", f"            out.append({rule_name(rule.id, i)!r})"]
    lines.append("    return frozenset(out)")
    return "\n".join(lines) + "\n"


def make_floor(kb: KnowledgeBase) -> Callable[[dict[str, Any]], frozenset[str]]:
    namespace: dict[str, Any] = {"E": {}, "M": object(), "NUM": (int, float)}
    exec(compile(floor_source(kb), "<bench floor>", "exec"), namespace)    # noqa: S102 - our own rule files
    return namespace["floor"]


def _contexts(kb: KnowledgeBase, extra: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, PatientContext]]:
    out = [(name, PatientContext.model_validate(body)) for name, body in extra]
    for rule in kb.rules.values():
        for i, case in enumerate(rule.tests):
            try:
                out.append((f"{rule.id} test {i}", PatientContext.model_validate(case["context"])))
            except Exception:   # noqa: BLE001 - a case the model refuses is not a fact to compare on
                continue
    return out


def check(kb: KnowledgeBase, engine: DurableEngine,
          contexts: Iterable[tuple[str, dict[str, Any]]]) -> tuple[bool, list[str]]:
    """(agrees, problems): the floor fires exactly what the engine fires on every context given and every test
    case of every rule; and it knows exactly the rules the engine has."""
    problems = []
    floor = make_floor(kb)
    names = {rule_name(r.id, i) for r in kb.active_rules for i in (None, *range(len(r.escalations)))}
    if engine.rule_names != names:
        problems.append(f"floor covers {sorted(names ^ engine.rule_names)} differently from the engine")
    for name, ctx in _contexts(kb, contexts):
        fact = derive_facts(ctx, kb.terminology, ctx.as_of or dt.date(2026, 3, 1)).fact
        want, got = engine.evaluate(fact), floor(fact)
        if want != got:
            problems.append(f"{name}: engine fired {sorted(want)}, floor {sorted(got)}")
    return not problems, problems
