"""Replay: re-evaluate a recorded decision's engine fact under the knowledge version it was made with.

The record stores the engine fact (flags, counts, numbers, dates, codes: no names, no free text), which is all
the engine matches on. Replaying it through the running evaluator's engine rebuilds the fired set
{rule_id, rule_version, severity} exactly as service.core.decision.Evaluator does (a rule that fired takes the
highest severity among its fired escalations, see Evaluator._advisory), and compares it with the recorded one.
This is only meaningful under the same knowledge version: any other version is reported as not loaded.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable

from ..core.engine import rule_name
from ..core.decision import fired_severity
from ..knowledge.rules import SEVERITY_RANK, Rule
from .record import AuditRecord

Fired = tuple[dict[str, str], ...]


@dataclass(frozen=True)
class ReplayResult:
    id: str
    knowledge_version: str              # the recorded one
    loaded_version: str                 # the one this evaluator runs
    replayed: bool                      # False: not re-evaluated (see reason)
    same: bool                          # the replayed fired set equals the recorded one
    recorded: Fired
    fired: Fired | None                 # the replayed fired set (None when not replayed)
    reason: str | None = None           # why not replayed, or how the sets differ

    @property
    def loaded(self) -> bool:
        return self.knowledge_version == self.loaded_version


def fired_set(rules: Iterable[Rule], fired: frozenset[str]) -> Fired:
    out = []
    for rule in rules:
        if rule_name(rule.id) not in fired:
            continue
        severity, _ = fired_severity(rule, fired)
        out.append({"rule_id": rule.id, "rule_version": rule.version, "severity": severity})
    out.sort(key=lambda f: (-SEVERITY_RANK[f["severity"]], f["rule_id"]))   # the advisories' order
    return tuple(out)


def _key(fired: Iterable[dict[str, Any]]) -> frozenset[tuple[str, str, str]]:
    return frozenset((str(f["rule_id"]), str(f["rule_version"]), str(f["severity"])) for f in fired)


def replay(record: AuditRecord, evaluator: Any) -> ReplayResult:
    """Re-run `record.facts` through `evaluator.engine` (an Evaluator: .kb, .engine). Raises EngineError if
    the engine fails (never reported as "same")."""
    loaded = evaluator.kb.version
    recorded = tuple(dict(f) for f in record.fired)
    if record.knowledge_version != loaded:
        return ReplayResult(record.id, record.knowledge_version, loaded, False, False, recorded, None,
                            f"knowledge version {record.knowledge_version} is not loaded (this service runs "
                            f"{loaded})")
    if record.facts is None:
        return ReplayResult(record.id, record.knowledge_version, loaded, False, False, recorded, None,
                            "no engine fact was recorded for this decision")
    names = evaluator.engine.evaluate(copy.deepcopy(record.facts))
    fired = fired_set(evaluator.kb.active_rules, names)
    same = _key(fired) == _key(recorded)
    reason = None
    if not same:
        extra = sorted(_key(fired) - _key(recorded))
        missing = sorted(_key(recorded) - _key(fired))
        reason = f"replay differs: now fired {extra}, no longer fired {missing}"
    return ReplayResult(record.id, record.knowledge_version, loaded, True, same, recorded, fired, reason)
