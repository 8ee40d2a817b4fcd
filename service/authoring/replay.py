"""The impact of a candidate knowledge base on past decisions: every stored decision's engine fact re-evaluated
under the candidate rules, compared with what was answered, per rule.

What is compared is the fired set, rule by rule: newly fired, no longer fired, severity changed. The stored fact
was derived by the facts code and terminology of its day; a candidate that changes the terminology (what counts
as an opioid) is not replayed by this, only one that changes rules.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..audit.record import AuditRecord
from ..audit.replay import fired_set
from ..core.decision import Evaluator


@dataclass
class RuleImpact:
    newly_fired: int = 0
    no_longer_fired: int = 0
    severity_changes: Counter = field(default_factory=Counter)    # "warning -> critical" -> count

    def as_dict(self) -> dict[str, Any]:
        return {"newly_fired": self.newly_fired, "no_longer_fired": self.no_longer_fired,
                "severity_changes": dict(sorted(self.severity_changes.items()))}


@dataclass
class Impact:
    knowledge_version: str
    since: dt.datetime | None
    replayed: int = 0
    changed: int = 0
    without_fact: int = 0              # feedback records and decisions stored without an engine fact
    per_rule: dict[str, RuleImpact] = field(default_factory=dict)
    recorded_versions: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"knowledge_version": self.knowledge_version, "since": self.since and self.since.isoformat(),
                "replayed": self.replayed, "changed": self.changed, "without_fact": self.without_fact,
                "recorded_knowledge_versions": dict(sorted(self.recorded_versions.items())),
                "rules": {k: v.as_dict() for k, v in sorted(self.per_rule.items())}}


def _compare(recorded: Iterable[dict[str, str]], now: Iterable[dict[str, str]], impact: Impact) -> bool:
    before = {f["rule_id"]: f["severity"] for f in recorded}
    after = {f["rule_id"]: f["severity"] for f in now}
    changed = False
    for rule_id in sorted(set(before) | set(after)):
        old, new = before.get(rule_id), after.get(rule_id)
        if old == new:
            continue
        changed = True
        entry = impact.per_rule.setdefault(rule_id, RuleImpact())
        if old is None:
            entry.newly_fired += 1
        elif new is None:
            entry.no_longer_fired += 1
        else:
            entry.severity_changes[f"{old} -> {new}"] += 1
    return changed


def replay_all(records: Iterable[AuditRecord], evaluator: Evaluator, since: dt.datetime | None = None) -> Impact:
    impact = Impact(evaluator.kb.version, since)
    rules = evaluator.kb.active_rules
    for record in records:
        if record.facts is None:
            impact.without_fact += 1
            continue
        now = fired_set(rules, evaluator.engine.evaluate(record.facts))
        impact.replayed += 1
        impact.recorded_versions[record.knowledge_version] += 1
        impact.changed += _compare(record.fired, now, impact)
    return impact


def render(impact: Impact) -> str:
    since = f" since {impact.since.isoformat()}" if impact.since else ""
    lines = [f"replayed {impact.replayed} stored decisions{since} under knowledge {impact.knowledge_version}"
             f" ({impact.without_fact} without an engine fact not replayed)",
             f"recorded under: " + (", ".join(f"{v} ({n})" for v, n in sorted(impact.recorded_versions.items()))
                                    or "(none)"),
             f"{impact.changed} of {impact.replayed} would change"]
    if impact.per_rule:
        width = max(len(r) for r in impact.per_rule)
        lines.append(f"{'rule':<{width}}  newly fired  no longer fired  severity changes")
        for rule_id, r in sorted(impact.per_rule.items()):
            sev = ", ".join(f"{k}: {n}" for k, n in sorted(r.severity_changes.items())) or "-"
            lines.append(f"{rule_id:<{width}}  {r.newly_fired:>11}  {r.no_longer_fired:>15}  {sev}")
    return "\n".join(lines)
