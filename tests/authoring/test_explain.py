"""`explain`: its trees (service/authoring/trace.py) agree with the engine's outcome, over every rule case and over
generated patient contexts (the engine against the same interpreter over generated facts and conditions:
tests/test_engine_oracle.py)."""
from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.authoring.casetest import CASE_AS_OF
from service.authoring.explain import explain
from service.core.context import PatientContext

SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
AS_OF = dt.date(2026, 3, 1)


def check_agreement(result: dict, seen: Counter) -> None:
    for entry in result["rules"]:
        assert entry["agrees"], entry
        assert entry["trace"]["when"]["result"] is (entry["outcome"] == "fired"), entry
        fired_escalations = [e["index"] for e in entry["trace"]["escalations"] if e["when"]["result"]]
        if entry["outcome"] == "fired" and entry["escalation"] is not None:
            assert entry["escalation"] in fired_escalations, entry
        if entry["outcome"] == "fired" and not fired_escalations:
            assert entry["escalation"] is None, entry
        seen[(entry["rule_id"], entry["outcome"])] += 1


def test_trace_and_engine_agree_on_every_rule_case(evaluator):
    seen: Counter = Counter()
    for rule in evaluator.kb.active_rules:
        for case in rule.tests:
            result = explain(evaluator, PatientContext.model_validate(case["context"]), today=CASE_AS_OF)
            check_agreement(result, seen)
            entry = next(e for e in result["rules"] if e["rule_id"] == rule.id)
            want = {"fires": "fired", "silent": "silent", "not-evaluated": "not-evaluated"}[case["expect"]]
            assert entry["outcome"] == want, (rule.id, case["name"])
    assert {outcome for _, outcome in seen} == {"fired", "silent", "not-evaluated"}


MED_NAMES = ["oxycodone 5 mg", "Percocet 5/325", "naltrexone 50 mg tablet", "Vivitrol", "Contrave", "naloxone",
             "low dose naltrexone 4.5 mg", "lisinopril", "tramadol", "Suboxone", "zzz unknown"]
DOSES = [0.5, 1, 1.5, 3, 4.5, 5, 5.5, 9, 16, 49.9, 50, 100]


def day(offset: int) -> str:
    return (AS_OF + dt.timedelta(days=offset)).isoformat()


def optional(strategy):
    return st.one_of(st.none(), strategy)


ldn_orders = st.fixed_dictionaries({"status": st.sampled_from(["proposed", "active", "on-hold", "stopped"])}, optional={
    "dose_mg": st.sampled_from(DOSES), "timing": st.sampled_from(["bedtime", "qhs", "morning", "evening"]),
    "start_date": st.integers(-60, 5).map(day), "previous_dose_mg": st.sampled_from(DOSES),
    "last_dose_change": st.integers(-40, 0).map(day)})
medications = st.lists(st.fixed_dictionaries({"name": st.sampled_from(MED_NAMES)}, optional={
    "status": st.sampled_from(["active", "proposed", "on-hold", "completed", "stopped"])}), max_size=4)
procedures = st.lists(st.fixed_dictionaries({"date": st.integers(-5, 40).map(day)}, optional={
    "elective": optional(st.booleans()), "opioids_expected": optional(st.booleans())}), max_size=3)
renal = st.fixed_dictionaries({}, optional={
    "egfr": st.sampled_from([10, 29.5, 42, 59.9, 60, 90]), "ckd_stage": st.sampled_from(["G1", "G2", "G3a", "G4"]),
    "dialysis": st.booleans()})
contexts = st.fixed_dictionaries({"as_of": st.just(AS_OF.isoformat())}, optional={
    "ldn": ldn_orders, "medications": medications, "procedures": procedures, "renal": renal})


def test_trace_and_engine_agree_on_generated_contexts(evaluator):
    seen: Counter = Counter()

    @settings(max_examples=400, **SETTINGS)
    @given(contexts)
    def check(body):
        check_agreement(explain(evaluator, PatientContext.model_validate(body)), seen)

    check()
    # Not vacuous: every rule was seen fired and not fired.
    for rule in evaluator.kb.active_rules:
        assert seen[(rule.id, "fired")] and seen[(rule.id, "silent")] + seen[(rule.id, "not-evaluated")], rule.id
    print(f"\nexplain over generated contexts: {dict(sorted(seen.items()))}")
