"""The rule condition language: checked against the fact vocabulary, then compiled to durable-rules JSON.

A condition is data:
    {all: [c, ...]}  {any: [c, ...]}  {fact: <dotted path>, <op>: <operand>}
with op one of is, is_not, lt, lte, gt, gte, in, exists, and an operand that is a literal or {param: name}.

Semantics (the same in durable-rules and in the test suite's reference interpreter): a comparison on an absent
fact is false (is_not too); `exists` tests presence. The compiled form never uses a bare `$nex`: the engine
and-s every rule with a positive type test (see service/engine.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPS = ("is", "is_not", "lt", "lte", "gt", "gte", "in", "exists")
_DURABLE_CMP = {"is_not": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_NUMERIC_OPS = {"lt", "lte", "gt", "gte"}


@dataclass(frozen=True)
class FactType:
    """The type of one leaf of the fact vocabulary (schemas/facts.schema.json)."""
    json_type: str                     # number | integer | boolean | string
    enum: tuple[Any, ...] | None = None

    def accepts(self, value: Any) -> bool:
        if self.enum is not None:
            return value in self.enum
        if self.json_type == "boolean":
            return isinstance(value, bool)
        if self.json_type in ("number", "integer"):
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, str)

    @property
    def numeric(self) -> bool:
        return self.json_type in ("number", "integer")


def vocabulary_from_schema(schema: dict[str, Any]) -> dict[str, FactType]:
    """Flatten the fact schema into {dotted path: FactType} for its leaves."""
    out: dict[str, FactType] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, sub in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            if sub.get("type") == "object":
                walk(sub, path + ".")
            elif "enum" in sub:
                kinds = {type(v).__name__ for v in sub["enum"]}
                out[path] = FactType("string" if kinds == {"str"} else "number", tuple(sub["enum"]))
            else:
                out[path] = FactType(sub["type"])
    walk(schema, "")
    return out


class ConditionError(ValueError):
    """A condition names an unknown fact or parameter, or compares with the wrong type. `field` locates it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def resolve(condition: Any, params: dict[str, Any], vocabulary: dict[str, FactType], where: str) -> Any:
    """Check a condition and return it with every {param: name} replaced by the parameter's value."""
    if "all" in condition or "any" in condition:
        key = "all" if "all" in condition else "any"
        return {key: [resolve(c, params, vocabulary, f"{where}.{key}[{i}]") for i, c in enumerate(condition[key])]}
    path = condition["fact"]
    ftype = vocabulary.get(path)
    if ftype is None:
        raise ConditionError(f"{where}.fact", f"unknown fact {path!r} (see schemas/facts.schema.json)")
    (op,) = [k for k in condition if k != "fact"]
    value = condition[op]
    if isinstance(value, dict):
        name = value["param"]
        if name not in params:
            raise ConditionError(f"{where}.{op}", f"unknown parameter {name!r}")
        value = params[name]
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and "e" in repr(v):
            # durable-rules' JSON parser rejects exponents (error 204) and would fail the whole ruleset.
            raise ConditionError(f"{where}.{op}", f"{v!r}: numbers must be writable in plain decimals "
                                 "(between 0.0001 and 1e16)")
    if op == "exists":
        if not isinstance(value, bool):
            raise ConditionError(f"{where}.{op}", "exists takes true or false")
    elif op == "in":
        if not isinstance(value, list) or not value or not all(ftype.accepts(v) for v in value):
            raise ConditionError(f"{where}.{op}", f"`in` needs a non-empty list of values valid for {path}")
    else:
        if op in _NUMERIC_OPS and not ftype.numeric:
            raise ConditionError(f"{where}.{op}", f"{op} needs a numeric fact; {path} is {ftype.json_type}")
        if not ftype.accepts(value):
            raise ConditionError(f"{where}.{op}", f"{value!r} is not a valid value for {path}")
    return {"fact": path, op: value}


def facts_used(condition: dict[str, Any]) -> set[str]:
    if "all" in condition or "any" in condition:
        return set().union(*(facts_used(c) for c in condition.get("all") or condition.get("any")))
    return {condition["fact"]}


def to_durable(condition: dict[str, Any]) -> dict[str, Any]:
    """Compile a resolved condition to a durable-rules expression (JSON ruleset syntax)."""
    if "all" in condition:
        return {"$and": [to_durable(c) for c in condition["all"]]}
    if "any" in condition:
        return {"$or": [to_durable(c) for c in condition["any"]]}
    path = condition["fact"]
    (op,) = [k for k in condition if k != "fact"]
    value = condition[op]
    if op == "is":
        return {path: value}
    if op == "in":
        return {"$or": [{path: v} for v in value]}
    if op == "exists":
        return {"$ex" if value else "$nex": {path: 1}}
    return {_DURABLE_CMP[op]: {path: value}}
