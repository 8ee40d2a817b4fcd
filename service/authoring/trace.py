"""An interpreter of our condition language that records, for every node, the fact value it read and its result.

It is written from the language's contract (service/knowledge/conditions.py), not from durable-rules, and is
the test suite's oracle for durable-rules too (tests/core/oracle.py): `ldn-rules explain` shows its trees
beside the engine's outcome, and a disagreement between the two is reported, never hidden.

  * {all: [...]} / {any: [...]}: conjunction / disjunction;
  * {fact: path, exists: b}: the path is present (b=true) or absent (b=false);
  * any other comparison on an ABSENT path is false (is_not included);
  * is / is_not / in: equality of values of the same kind (booleans are not numbers; 5 == 5.0);
  * lt, lte, gt, gte: numeric order.
"""
from __future__ import annotations

import operator
from typing import Any

from ..core.engine import rule_name

ABSENT = object()
_ORDER = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def lookup(fact: dict[str, Any], path: str) -> Any:
    node: Any = fact
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def _leaf(op: str, value: Any, operand: Any) -> bool:
    if op == "exists":
        return (value is not ABSENT) is operand
    if value is ABSENT:
        return False
    if op == "is":
        return _equal(value, operand)
    if op == "is_not":
        return not _equal(value, operand)
    if op == "in":
        return any(_equal(value, v) for v in operand)
    return _kind(value) == "number" and _kind(operand) == "number" and _ORDER[op](value, operand)


def trace(condition: dict[str, Any], fact: dict[str, Any]) -> dict[str, Any]:
    """The condition as a tree of {all|any: [...], result} and {fact, op, operand, value, present, result}.
    Every child is evaluated (no short cut), so a reviewer sees each fact the rule reads."""
    for key in ("all", "any"):
        if key in condition:
            children = [trace(c, fact) for c in condition[key]]
            results = [c["result"] for c in children]
            return {key: children, "result": all(results) if key == "all" else any(results)}
    (op,) = [k for k in condition if k != "fact"]
    value = lookup(fact, condition["fact"])
    return {"fact": condition["fact"], "op": op, "operand": condition[op], "present": value is not ABSENT,
            "value": None if value is ABSENT else value, "result": _leaf(op, value, condition[op])}


def holds(condition: dict[str, Any], fact: dict[str, Any]) -> bool:
    return trace(condition, fact)["result"]


def fired_names(rules: Any, fact: dict[str, Any]) -> frozenset[str]:
    """The rule names the engine reports for this fact, as this interpreter reads the rules (service.engine
    names: rule id; `id#i` when escalation i holds too)."""
    out: set[str] = set()
    for rule in rules:
        if rule.active and trace(rule.when, fact)["result"]:
            out.add(rule.id)
            out.update(rule_name(rule.id, i) for i, e in enumerate(rule.escalations) if trace(e.when, fact)["result"])
    return frozenset(out)
