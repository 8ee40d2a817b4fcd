"""Every rule file's own test cases, run through the real path: request model -> facts -> durable-rules.

The cases are those of RULES_DIR when it is set (a candidate knowledge base: `RULES_DIR=... make test`), else
of the shipped rules/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.core.context import PatientContext
from service.core.decision import SUMMARY_MAX, Evaluator
from service.knowledge.base import load_knowledge

from ..conftest import FIXED_TODAY

RULES_DIR = Path(os.environ["RULES_DIR"]) if os.environ.get("RULES_DIR") else None
CASES_KB = load_knowledge(RULES_DIR)
CASES = [(rule.id, i, case) for rule in CASES_KB.active_rules for i, case in enumerate(rule.tests)]


@pytest.fixture(scope="module")
def case_evaluator(evaluator):
    # The session's evaluator for the shipped rules; one more engine only for a RULES_DIR that differs.
    return evaluator if CASES_KB.version == evaluator.kb.version else Evaluator(CASES_KB)


@pytest.mark.parametrize("rule_id,index,case", CASES, ids=[f"{r}[{i}] {c['name']}" for r, i, c in CASES])
def test_rule_case(case_evaluator, rule_id, index, case):
    decision = case_evaluator.evaluate(PatientContext.model_validate(case["context"]), today=FIXED_TODAY)
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


def test_every_rule_has_a_firing_and_a_non_firing_case():
    for rule in CASES_KB.rules.values():
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
