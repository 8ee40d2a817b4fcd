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


@dataclass(frozen=True)
class _RuleText:
    """What a rule's advisory needs that does not depend on the patient: built once per rule at load."""
    name: str
    summary: Any                  # compiled templates (templates.compile)
    detail: Any
    action: Any
    escalations: tuple[tuple[Any, Any], ...]   # per escalation: compiled summary, action (None: the rule's own)
    conflicts: str                # " The sources disagree: ..." or ""


def _rule_text(rule: Rule) -> _RuleText:
    def opt(text: str | None) -> Any:
        return templates.compile(text) if text else None
    conflicts = [c for c in rule.citations if c.stance == "conflicts"]
    suffix = (" The sources disagree: " + " ".join(f"{c.title} reports “{c.quote}”." for c in conflicts)
              if conflicts else "")
    return _RuleText(rule_name(rule.id), templates.compile(rule.summary), templates.compile(rule.detail),
                     templates.compile(rule.action), tuple((opt(e.summary), opt(e.action)) for e in rule.escalations),
                     suffix)


class Evaluator:
    """Holds the knowledge base and its compiled engine; evaluate() is safe to call from many threads."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.engine = DurableEngine(kb.active_rules)
        self._texts = {rule.id: _rule_text(rule) for rule in kb.active_rules}

    def evaluate(self, ctx: PatientContext, today: dt.date | None = None) -> Decision:
        as_of = ctx.as_of or today or dt.datetime.now(dt.timezone.utc).date()
        facts = derive_facts(ctx, self.kb.terminology, as_of)
        fired = self.engine.evaluate(facts.fact)
        # The advisory ids hash the whole fact and evidence: only worth serialising when a rule fired (the catch-all
        # never appears in `fired`).
        fact_key = (json.dumps(facts.fact, sort_keys=True) + json.dumps(facts.evidence, sort_keys=True, default=str)
                    if fired else "")
        advisories: list[Advisory] = []
        not_evaluated: list[NotEvaluated] = []
        for rule in self.kb.active_rules:
            text = self._texts[rule.id]
            if text.name in fired:
                advisories.append(self._advisory(rule, text, fired, facts, fact_key))
                continue
            missing = tuple(i for i in rule.requires if i not in facts.inputs)
            if missing:
                labels = ", ".join(self.kb.inputs[i]["short"] for i in missing)
                not_evaluated.append(NotEvaluated(rule.id, rule.version, max_severity(rule), missing,
                                                  f"{labels} not provided: {rule.title} not checked"))
        advisories.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.rule_id))
        not_evaluated.sort(key=lambda n: (-SEVERITY_RANK[n.severity], n.rule_id))
        return Decision(as_of, self.kb.version, facts, tuple(advisories), tuple(not_evaluated))

    def _advisory(self, rule: Rule, text: _RuleText, fired: frozenset[str], facts: Facts, fact_key: str) -> Advisory:
        severity, escalation = fired_severity(rule, fired)
        summary_t, action_t = text.summary, text.action
        if escalation is not None:
            esc_summary, esc_action = text.escalations[rule.escalations.index(escalation)]
            summary_t, action_t = esc_summary or summary_t, esc_action or action_t
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

        summary = summary_t(lookup)
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
        detail = text.detail(lookup) + text.conflicts
        ident = uuid.uuid5(_ADVISORY_NS, f"{self.kb.version}|{rule.id}|{severity}|{facts.as_of}|{fact_key}")
        return Advisory(str(ident), rule.id, rule.version, severity, rule.title, summary, detail,
                        action_t(lookup), evidence, rule.citations, rule.coding)
