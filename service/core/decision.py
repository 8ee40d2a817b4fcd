"""The shared decision: one patient context in, advisories and not-evaluated rules out.

request -> facts -> engine -> advisories. Every API (native, order check, CDS Hooks) calls `Evaluator.evaluate`
and only changes the representation of the Decision it returns.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from .context import PatientContext
from .engine import DurableEngine, encode_fact, rule_name
from .facts import Facts, derive_facts, walk
from .ids import uuid5
from ..knowledge import templates
from ..knowledge.base import KnowledgeBase
from ..knowledge.rules import SEVERITY_RANK, Citation, Escalation, Rule

_ADVISORY_NS = uuid.UUID("6c1f4f2e-52a8-4d0e-9d0b-2f4c3e1b7a10")
# json.dumps(..., sort_keys=True, default=str), the encoder built once rather than per call. No circular-reference
# check: derive_facts builds trees (the check only turns a cycle into ValueError; the text is the same without it).
_EVIDENCE_JSON = json.JSONEncoder(sort_keys=True, default=str, check_circular=False)
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


Scope = tuple[Facts, dict[str, Any]]     # what an advisory's placeholders read: the facts, the rule's evidence


def _bind(path: str, params: dict[str, Any]) -> Callable[[Scope], Any] | templates.Known:
    """A template path -> its getter, resolved once per rule (templates.compile). Missing values are None."""
    if path == "as_of":
        return lambda scope: scope[0].as_of.isoformat()
    head, _, rest = path.partition(".")
    if head == "param":
        return templates.Known(params.get(rest))
    if head == "evidence":
        keys = rest.split(".")
        return lambda scope: walk(scope[1], keys)
    fact_keys = path.split(".")                 # Facts.lookup(path), split once
    return lambda scope: walk(scope[0].fact, fact_keys)


Template = Callable[[Scope], str]


@dataclass(frozen=True)
class _RuleText:
    """What a rule's advisory and not-evaluated entries need that does not depend on the patient: built once per
    rule at load."""
    name: str
    summary: Template
    detail: Template
    action: Template
    escalations: tuple[tuple[Template | None, Template | None], ...]   # per escalation: summary, action (None:
                                                                        # the rule's own)
    conflicts: str                # " The sources disagree: ..." or ""
    requires: frozenset[str]
    not_evaluated: dict[tuple[str, ...], NotEvaluated]   # per possible tuple of missing inputs


def _rule_text(rule: Rule, inputs: dict[str, dict[str, str]]) -> _RuleText:
    params = rule.param_values

    def compiled(text: str) -> Template:
        return templates.compile(text, lambda path: _bind(path, params))

    def opt(text: str | None) -> Template | None:
        return compiled(text) if text else None
    conflicts = [c for c in rule.citations if c.stance == "conflicts"]
    suffix = (" The sources disagree: " + " ".join(f"{c.title} reports “{c.quote}”." for c in conflicts)
              if conflicts else "")
    severity = max_severity(rule)
    not_evaluated: dict[tuple[str, ...], NotEvaluated] = {}
    for size in range(1, len(rule.requires) + 1):
        for missing in itertools.combinations(rule.requires, size):   # in requires' order, as evaluate finds them
            labels = ", ".join(inputs[i]["short"] for i in missing)
            not_evaluated[missing] = NotEvaluated(rule.id, rule.version, severity, missing,
                                                  f"{labels} not provided: {rule.title} not checked")
    return _RuleText(rule_name(rule.id), compiled(rule.summary), compiled(rule.detail), compiled(rule.action),
                     tuple((opt(e.summary), opt(e.action)) for e in rule.escalations), suffix,
                     frozenset(rule.requires), not_evaluated)


def _advisory_id(head: str, key: bytes) -> str:
    """str(uuid.uuid5(_ADVISORY_NS, head + key.decode())), the shared key hashed as the bytes it already is."""
    return uuid5(_ADVISORY_NS, head.encode() + key)


class Evaluator:
    """Holds the knowledge base and its compiled engine; evaluate() is safe to call from many threads."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.engine = DurableEngine(kb.active_rules)
        self._texts = [(rule, _rule_text(rule, kb.inputs)) for rule in kb.active_rules]

    def evaluate(self, ctx: PatientContext, today: dt.date | None = None) -> Decision:
        as_of = ctx.as_of or today or dt.datetime.now(dt.timezone.utc).date()
        facts = derive_facts(ctx, self.kb.terminology, as_of)
        fact_json = encode_fact(facts.fact)
        fired = self.engine.evaluate_encoded(fact_json)
        # The advisory ids hash the whole fact (the text the engine read) and the evidence: the evidence only worth
        # serialising when a rule fired (the catch-all never appears in `fired`).
        fact_key = (fact_json + _EVIDENCE_JSON.encode(facts.evidence)).encode() if fired else b""
        advisories: list[Advisory] = []
        not_evaluated: list[NotEvaluated] = []
        inputs = facts.inputs
        for rule, text in self._texts:
            if text.name in fired:
                advisories.append(self._advisory(rule, text, fired, facts, fact_key))
            elif not text.requires <= inputs:
                not_evaluated.append(text.not_evaluated[tuple(i for i in rule.requires if i not in inputs)])
        advisories.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.rule_id))
        not_evaluated.sort(key=lambda n: (-SEVERITY_RANK[n.severity], n.rule_id))
        return Decision(as_of, self.kb.version, facts, tuple(advisories), tuple(not_evaluated))

    def _advisory(self, rule: Rule, text: _RuleText, fired: frozenset[str], facts: Facts, fact_key: bytes) -> Advisory:
        severity, escalation = fired_severity(rule, fired)
        summary_t, action_t = text.summary, text.action
        if escalation is not None:
            esc_summary, esc_action = text.escalations[rule.escalations.index(escalation)]
            summary_t, action_t = esc_summary or summary_t, esc_action or action_t
        evidence = {k: facts.evidence[k] for k in rule.evidence if k in facts.evidence}
        scope = (facts, evidence)
        summary = summary_t(scope)
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
        detail = text.detail(scope) + text.conflicts
        ident = _advisory_id(f"{self.kb.version}|{rule.id}|{severity}|{facts.as_of}|", fact_key)
        return Advisory(ident, rule.id, rule.version, severity, rule.title, summary, detail,
                        action_t(scope), evidence, rule.citations, rule.coding)
