"""The shared decision: one patient context in, advisories and not-evaluated rules out.

request -> facts -> engine -> advisories. Every API (native, order check, CDS Hooks) calls `Evaluator.evaluate`
and only changes the representation of the Decision it returns.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from .context import PatientContext
from .engine import DurableEngine, rule_name
from .facts import Facts, derive_facts
from .knowledge import templates
from .knowledge.base import KnowledgeBase
from .knowledge.rules import SEVERITY_RANK, Citation, Escalation, Rule

_ADVISORY_NS = uuid.UUID("6c1f4f2e-52a8-4d0e-9d0b-2f4c3e1b7a10")
SUMMARY_MAX = 139


@dataclass(frozen=True)
class Advisory:
    id: str
    rule_id: str
    rule_version: str
    severity: str
    title: str
    summary: str
    detail: str
    action: str
    evidence: dict[str, Any]
    citations: tuple[Citation, ...]
    coding: dict[str, Any]


@dataclass(frozen=True)
class NotEvaluated:
    rule_id: str
    rule_version: str
    severity: str                 # the highest severity the rule could have had
    missing: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Decision:
    as_of: dt.date
    knowledge_version: str
    facts: Facts
    advisories: tuple[Advisory, ...]
    not_evaluated: tuple[NotEvaluated, ...]

    @property
    def highest_severity(self) -> str | None:
        return self.advisories[0].severity if self.advisories else None


def fired_severity(rule: Rule, fired: frozenset[str]) -> tuple[str, Escalation | None]:
    """A fired rule's severity: its own, raised by the highest of its escalations that also fired.
    (Also used by the audit replay, so a replay rebuilds exactly what an evaluation returned.)"""
    severity, chosen = rule.severity, None
    for i, esc in enumerate(rule.escalations):
        if rule_name(rule.id, i) in fired and SEVERITY_RANK[esc.severity] > SEVERITY_RANK[severity]:
            severity, chosen = esc.severity, esc
    return severity, chosen


def max_severity(rule: Rule) -> str:
    return max([rule.severity, *(e.severity for e in rule.escalations)], key=SEVERITY_RANK.__getitem__)


class Evaluator:
    """Holds the knowledge base and its compiled engine; evaluate() is safe to call from many threads."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.engine = DurableEngine(kb.active_rules)

    def evaluate(self, ctx: PatientContext, today: dt.date | None = None) -> Decision:
        as_of = ctx.as_of or today or dt.datetime.now(dt.timezone.utc).date()
        facts = derive_facts(ctx, self.kb.terminology, as_of)
        fired = self.engine.evaluate(facts.fact)
        fact_key = json.dumps(facts.fact, sort_keys=True) + json.dumps(facts.evidence, sort_keys=True, default=str)
        advisories: list[Advisory] = []
        not_evaluated: list[NotEvaluated] = []
        for rule in self.kb.active_rules:
            if rule_name(rule.id) in fired:
                advisories.append(self._advisory(rule, fired, facts, fact_key))
                continue
            missing = tuple(i for i in rule.requires if i not in facts.inputs)
            if missing:
                labels = ", ".join(self.kb.inputs[i]["short"] for i in missing)
                not_evaluated.append(NotEvaluated(rule.id, rule.version, max_severity(rule), missing,
                                                  f"{labels} not provided: {rule.title} not checked"))
        advisories.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.rule_id))
        not_evaluated.sort(key=lambda n: (-SEVERITY_RANK[n.severity], n.rule_id))
        return Decision(as_of, self.kb.version, facts, tuple(advisories), tuple(not_evaluated))

    def _advisory(self, rule: Rule, fired: frozenset[str], facts: Facts, fact_key: str) -> Advisory:
        severity, escalation = fired_severity(rule, fired)
        summary = (escalation.summary if escalation else None) or rule.summary
        action = (escalation.action if escalation else None) or rule.action
        evidence = {k: facts.evidence[k] for k in rule.evidence if k in facts.evidence}
        params = rule.param_values

        def lookup(path: str) -> Any:
            if path == "as_of":
                return facts.as_of.isoformat()
            head, _, rest = path.partition(".")
            if head == "param":
                return params.get(rest)
            if head == "evidence":
                node: Any = evidence
                for part in rest.split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                return node
            return facts.lookup(path)

        summary = templates.render(summary, lookup)
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
        detail = templates.render(rule.detail, lookup)
        conflicts = [c for c in rule.citations if c.stance == "conflicts"]
        if conflicts:
            detail += " The sources disagree: " + " ".join(
                f"{c.title} reports “{c.quote}”." for c in conflicts)
        ident = uuid.uuid5(_ADVISORY_NS, f"{self.kb.version}|{rule.id}|{severity}|{facts.as_of}|{fact_key}")
        return Advisory(str(ident), rule.id, rule.version, severity, rule.title, summary, detail,
                        templates.render(action, lookup), evidence, rule.citations, rule.coding)
