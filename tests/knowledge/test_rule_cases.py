"""Every rule file's own test cases, run through the real path: request model -> facts -> durable-rules."""
from __future__ import annotations

import pytest

from service.core.context import PatientContext
from service.core.decision import SUMMARY_MAX
from service.knowledge.base import load_knowledge

from ..conftest import FIXED_TODAY

CASES = [(rule.id, i, case) for rule in load_knowledge().rules.values() for i, case in enumerate(rule.tests)]


@pytest.mark.parametrize("rule_id,index,case", CASES, ids=[f"{r}[{i}] {c['name']}" for r, i, c in CASES])
def test_rule_case(evaluator, rule_id, index, case):
    decision = evaluator.evaluate(PatientContext.model_validate(case["context"]), today=FIXED_TODAY)
    fired = {a.rule_id: a for a in decision.advisories}
    skipped = {n.rule_id: n for n in decision.not_evaluated}
    if case["expect"] == "fires":
        assert rule_id in fired, f"expected {rule_id} to fire; fired: {sorted(fired)}; not evaluated: {sorted(skipped)}"
        advisory = fired[rule_id]
        if "severity" in case:
            assert advisory.severity == case["severity"]
        assert 0 < len(advisory.summary) <= SUMMARY_MAX and "…" not in advisory.summary
        assert "unknown" not in advisory.summary, advisory.summary
        assert "{" not in advisory.summary + advisory.detail + advisory.action
        assert advisory.citations and advisory.rule_version
    elif case["expect"] == "silent":
        assert rule_id not in fired, fired.get(rule_id)
        assert rule_id not in skipped, skipped.get(rule_id)
    else:
        assert rule_id not in fired
        assert rule_id in skipped, f"{rule_id} should be reported as not evaluated"
        assert skipped[rule_id].reason.endswith("not checked")


def test_every_rule_has_a_firing_and_a_non_firing_case(kb):
    for rule in kb.rules.values():
        expects = {c["expect"] for c in rule.tests}
        assert "fires" in expects and "silent" in expects, rule.id


def test_the_rule_set_is_the_one_the_brief_names(kb):
    assert set(kb.rules) == {
        "ldn-opioid-coadministration", "ldn-perioperative-hold", "ldn-dose-above-range", "ldn-dose-addiction-range",
        "ldn-dose-below-range", "ldn-titration-start", "ldn-titration-step", "ldn-bedtime-dosing",
        "ldn-renal-impairment", "ldn-duplicate-naltrexone", "ldn-side-effect-counselling",
        # issue 11, the product owner's clinical decisions
        "naltrexone-opioid-blockade", "ldn-nonelective-procedure", "ldn-titration-interval"}
    assert all(r.active for r in kb.rules.values())
