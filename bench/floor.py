"""The floor for rule evaluation: the rule files' conditions compiled once into plain Python closures.

`make_floor(kb)` returns `floor(fact) -> frozenset of fired rule names`, the same names DurableEngine.evaluate
returns (`<rule id>` and `<rule id>#<escalation index>`), applied to the same fact dict (derive_facts(...).fact).
It is derived from the loaded rules (conditions with their parameters resolved), so it covers whatever rules exist:
a new rule, a changed condition or a re-tuned threshold needs no change here. It is the least work any evaluator
must do: one closure call per condition node on an in-memory dict, no JSON, no engine. `check(kb, engine)` proves
the two agree (on the reference contexts and on every rule's own test cases) before any floor figure is reported.

Semantics as in the condition language: a comparison on an absent fact is false (is_not too); `exists` tests
presence.
"""
from __future__ import annotations

import datetime as dt
import operator
from typing import Any, Callable, Iterable

from service.core.context import PatientContext
from service.core.engine import DurableEngine, rule_name
from service.core.facts import derive_facts
from service.knowledge.base import KnowledgeBase

Test = Callable[[dict[str, Any]], bool]
_MISSING = object()
_CMP = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    keys = path.split(".")

    def get(fact: dict[str, Any]) -> Any:
        node: Any = fact
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return _MISSING
            node = node[key]
        return node
    return get


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality as the engine sees it: true is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def compile_condition(condition: dict[str, Any]) -> Test:
    if "all" in condition:
        parts = [compile_condition(c) for c in condition["all"]]
        return lambda fact: all(p(fact) for p in parts)
    if "any" in condition:
        parts = [compile_condition(c) for c in condition["any"]]
        return lambda fact: any(p(fact) for p in parts)
    get = _getter(condition["fact"])
    (op,) = [k for k in condition if k != "fact"]
    want = condition[op]
    if op == "exists":
        return lambda fact: (get(fact) is not _MISSING) == want
    if op == "is":
        return lambda fact: _same(get(fact), want)
    if op == "is_not":
        return lambda fact: (v := get(fact)) is not _MISSING and not _same(v, want)
    if op == "in":
        return lambda fact: any(_same(get(fact), w) for w in want)
    cmp = _CMP[op]
    return lambda fact: _num(v := get(fact)) and cmp(v, want)


def make_floor(kb: KnowledgeBase) -> Callable[[dict[str, Any]], frozenset[str]]:
    tests: list[tuple[str, Test]] = []
    for rule in kb.active_rules:
        base = compile_condition(rule.when)
        tests.append((rule_name(rule.id), base))
        for i, esc in enumerate(rule.escalations):
            tests.append((rule_name(rule.id, i), compile_condition({"all": [rule.when, esc.when]})))

    def floor(fact: dict[str, Any]) -> frozenset[str]:
        return frozenset(name for name, test in tests if test(fact))
    return floor


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
