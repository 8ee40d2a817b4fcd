"""The benchmark's floor (bench/floor.py) is derived from the rule files and must fire what the engine fires:
a benchmark against a wrong floor is worthless."""
from __future__ import annotations

import copy
import dataclasses

from bench import floor as floor_mod
from bench.contexts import CONTEXTS


def test_the_floor_agrees_with_the_engine_on_every_context_and_rule_case(evaluator):
    agrees, problems = floor_mod.check(evaluator.kb, evaluator.engine, CONTEXTS.items())
    assert agrees, problems


def test_the_floor_follows_a_changed_threshold_without_code(evaluator):
    """A re-tuned rule changes the floor too: it is compiled from the rules, not copied from them."""
    kb = evaluator.kb
    rule = kb.rules["ldn-dose-above-range"]
    fact = {"t": "patient", "ldn": {"in_use": True, "status": "active", "dose_mg": 6.0, "has_previous_dose": False}}
    assert "ldn-dose-above-range" in floor_mod.make_floor(kb)(fact)
    when = copy.deepcopy(rule.when)
    for c in when["all"]:
        if c.get("fact") == "ldn.dose_mg" and "gt" in c:
            c["gt"] = 7.0
    changed = dataclasses.replace(kb, rules={**kb.rules, rule.id: dataclasses.replace(rule, when=when)})
    assert "ldn-dose-above-range" not in floor_mod.make_floor(changed)(fact)


def test_a_disagreeing_floor_is_reported(evaluator, monkeypatch):
    monkeypatch.setattr(floor_mod, "make_floor", lambda kb: (lambda fact: frozenset()))
    agrees, problems = floor_mod.check(evaluator.kb, evaluator.engine, CONTEXTS.items())
    assert not agrees and problems
