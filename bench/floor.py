"""The floor for rule evaluation: the shipped rules' conditions written by hand as one Python function.

`make_floor(kb)` returns `floor(fact) -> frozenset of fired rule names`, the same names DurableEngine.evaluate
returns (`<rule id>` and `<rule id>#<escalation index>`), applied to the same fact dict (derive_facts(...).fact).
Thresholds are read from the rule files' parameters, so a re-tuned threshold needs no change here; a changed
condition or a new rule does. `check(kb, engine)` proves the two agree (on the reference contexts and on every
rule's own test cases) before any floor figure is reported: a benchmark against a wrong floor is worthless.

Semantics as in the condition language: a comparison on an absent fact is false.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Iterable

from service.core.context import PatientContext
from service.core.engine import DurableEngine
from service.core.facts import derive_facts
from service.knowledge.base import KnowledgeBase

FLOOR_RULES = frozenset({
    "ldn-bedtime-dosing", "ldn-dose-above-range", "ldn-dose-addiction-range", "ldn-dose-below-range",
    "ldn-duplicate-naltrexone", "ldn-opioid-coadministration", "ldn-perioperative-hold", "ldn-renal-impairment",
    "ldn-side-effect-counselling", "ldn-titration-start", "ldn-titration-step", "ldn-perioperative-hold#0"})


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def make_floor(kb: KnowledgeBase) -> Callable[[dict[str, Any]], frozenset[str]]:
    p = {r.id: r.param_values for r in kb.active_rules}
    above_max = p["ldn-dose-above-range"]["ldn_max_mg"]
    above_addiction = p["ldn-dose-above-range"]["addiction_dose_mg"]
    addiction = p["ldn-dose-addiction-range"]["addiction_dose_mg"]
    below_min = p["ldn-dose-below-range"]["ldn_min_mg"]
    lookahead = p["ldn-perioperative-hold"]["lookahead_days"]
    hold_min = p["ldn-perioperative-hold"]["hold_days_min"]
    egfr_threshold = p["ldn-renal-impairment"]["egfr_threshold"]
    ckd_stages = frozenset(p["ldn-renal-impairment"]["ckd_stages"])
    counsel_window = p["ldn-side-effect-counselling"]["new_start_window_days"]
    start_dose = p["ldn-titration-start"]["start_dose_mg"]
    start_window = p["ldn-titration-start"]["new_start_window_days"]
    max_step = p["ldn-titration-step"]["max_step_mg"]
    min_interval = p["ldn-titration-step"]["min_interval_days"]

    def floor(fact: dict[str, Any]) -> frozenset[str]:
        ldn = fact.get("ldn")
        if not ldn or ldn.get("in_use") is not True:      # every rule starts with ldn.in_use is true
            return frozenset()
        fired = []
        if ldn.get("at_bedtime") is False:
            fired.append("ldn-bedtime-dosing")
        dose = ldn.get("dose_mg")
        if _num(dose):
            if above_max < dose < above_addiction:
                fired.append("ldn-dose-above-range")
            if dose >= addiction:
                fired.append("ldn-dose-addiction-range")
            if dose < below_min:
                fired.append("ldn-dose-below-range")
        meds = fact.get("medications") or {}
        n = meds.get("current_other_naltrexone_count")
        if _num(n) and n > 0:
            fired.append("ldn-duplicate-naltrexone")
        n = meds.get("current_opioid_count")
        if _num(n) and n > 0:
            fired.append("ldn-opioid-coadministration")
        days = (fact.get("procedures") or {}).get("periop_days_until")
        if _num(days) and 0 <= days <= lookahead:
            fired.append("ldn-perioperative-hold")
            if days <= hold_min:
                fired.append("ldn-perioperative-hold#0")
        renal = fact.get("renal") or {}
        egfr = renal.get("egfr")
        if (_num(egfr) and egfr < egfr_threshold) or renal.get("ckd_stage") in ckd_stages \
                or renal.get("dialysis") is True:
            fired.append("ldn-renal-impairment")
        if ldn.get("has_previous_dose") is False:
            since = ldn.get("days_since_start")
            proposed = ldn.get("status") == "proposed"
            if proposed or (_num(since) and since <= counsel_window):
                fired.append("ldn-side-effect-counselling")
            if _num(dose) and dose > start_dose and (proposed or (_num(since) and since <= start_window)):
                fired.append("ldn-titration-start")
        step = ldn.get("dose_increase_mg")
        if _num(step) and step > 0:
            since_change = ldn.get("days_since_last_change")
            if step > max_step or (_num(since_change) and since_change < min_interval):
                fired.append("ldn-titration-step")
        return frozenset(fired)

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
    if engine.rule_names != FLOOR_RULES:
        problems.append(f"floor covers {sorted(FLOOR_RULES ^ engine.rule_names)} differently from the engine "
                        "(a rule was added, removed or renamed: update bench/floor.py)")
    floor = make_floor(kb)
    for name, ctx in _contexts(kb, contexts):
        fact = derive_facts(ctx, kb.terminology, ctx.as_of or dt.date(2026, 3, 1)).fact
        want, got = engine.evaluate(fact), floor(fact)
        if want != got:
            problems.append(f"{name}: engine fired {sorted(want)}, floor {sorted(got)}")
    return not problems, problems
