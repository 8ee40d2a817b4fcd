"""Why each active rule fired, stayed silent or was not evaluated for one patient context.

The outcome (fired with its severity and escalation, silent, not-evaluated with the missing inputs) is the
engine's: the Evaluator's decision and the engine's fired rule names. The tree under it is the trace
interpreter's (trace.py); `agrees` says the two read the rule the same way (a test holds them to it).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..core.context import PatientContext
from ..core.decision import Evaluator, fired_severity
from ..core.engine import rule_name
from ..core.facts import derive_facts
from .trace import fired_names, trace


def explain(evaluator: Evaluator, ctx: PatientContext, today: dt.date | None = None) -> dict[str, Any]:
    decision = evaluator.evaluate(ctx, today=today)
    fact = derive_facts(ctx, evaluator.kb.terminology, decision.as_of).fact
    names = evaluator.engine.evaluate(fact)          # which escalations fired (the decision keeps only severity)
    traced = fired_names(evaluator.kb.active_rules, fact)
    fired = {a.rule_id: a for a in decision.advisories}
    skipped = {n.rule_id: n for n in decision.not_evaluated}
    out = []
    for rule in evaluator.kb.active_rules:
        entry: dict[str, Any] = {"rule_id": rule.id, "rule_version": rule.version}
        if rule.id in fired:
            _, escalation = fired_severity(rule, names)
            index = None if escalation is None else rule.escalations.index(escalation)
            entry.update(outcome="fired", severity=fired[rule.id].severity, escalation=index, missing=[])
        elif rule.id in skipped:
            entry.update(outcome="not-evaluated", severity=skipped[rule.id].severity, escalation=None,
                         missing=list(skipped[rule.id].missing))
        else:
            entry.update(outcome="silent", severity=None, escalation=None, missing=[])
        own = {n for n in names if n.split("#")[0] == rule.id}
        entry["agrees"] = own == {n for n in traced if n.split("#")[0] == rule.id}
        raw_escalations = rule.raw.get("escalations") or []
        entry["trace"] = {"when": _named(trace(rule.when, fact), rule.raw["when"]), "escalations": [
            {"index": i, "severity": e.severity, "fired": rule_name(rule.id, i) in names,
             "when": _named(trace(e.when, fact), raw_escalations[i]["when"])}
            for i, e in enumerate(rule.escalations)]}
        out.append(entry)
    return {"knowledge_version": decision.knowledge_version, "as_of": decision.as_of.isoformat(), "fact": fact,
            "rules": out}


def _named(node: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """The trace with the parameter names of the rule file as written (resolve() keeps the tree's shape)."""
    for key in ("all", "any"):
        if key in node:
            for child, raw in zip(node[key], written[key]):
                _named(child, raw)
            return node
    operand = written.get(node["op"])
    if isinstance(operand, dict) and "param" in operand:
        node["param"] = operand["param"]
    return node


def _value(node: dict[str, Any]) -> str:
    return json.dumps(node["value"], ensure_ascii=False) if node["present"] else "absent"


def _tree(node: dict[str, Any], depth: int) -> list[str]:
    pad = "    " * depth
    mark = "yes" if node["result"] else "no "
    for key in ("all", "any"):
        if key in node:
            head = f"{pad}[{mark}] {'all of' if key == 'all' else 'any of'}:"
            return [head] + [line for child in node[key] for line in _tree(child, depth + 1)]
    operand = json.dumps(node["operand"], ensure_ascii=False)
    param = f" (param {node['param']})" if "param" in node else ""
    return [f"{pad}[{mark}] {node['fact']} {node['op']} {operand}{param}   (value: {_value(node)})"]


def _headline(entry: dict[str, Any]) -> str:
    head = f"{entry['rule_id']} {entry['rule_version']}: {entry['outcome']}"
    if entry["outcome"] == "fired":
        esc = entry["escalation"]
        head += f", {entry['severity']}" + (" (its own severity)" if esc is None else f" (escalations[{esc}])")
    elif entry["outcome"] == "not-evaluated":
        head += f": {', '.join(entry['missing'])} not provided (could have been {entry['severity']})"
    if not entry["agrees"]:
        head += "  !! the trace below disagrees with the engine: report this"
    return head


def render_text(result: dict[str, Any]) -> str:
    lines = [f"knowledge {result['knowledge_version']}, as of {result['as_of']}", ""]
    for entry in result["rules"]:
        lines.append(_headline(entry))
        lines.append("  when:")
        lines += _tree(entry["trace"]["when"], 1)
        for esc in entry["trace"]["escalations"]:
            lines.append(f"  escalations[{esc['index']}] to {esc['severity']} (with the rule's own condition):")
            lines += _tree(esc["when"], 1)
        lines.append("")
    return "\n".join(lines)
