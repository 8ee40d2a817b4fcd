"""Every rule's own test cases (the `tests:` block of its file), run through the real path: request model ->
facts -> engine -> decision. Used by `ldn-rules test` and by start-up, which refuses a knowledge base whose
cases fail."""
from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from typing import Any, Iterator

from pydantic import ValidationError

from ..core.context import PatientContext
from ..core.engine import EngineError
from ..core.decision import SUMMARY_MAX, Advisory, Decision, Evaluator, NotEvaluated

# Cases without their own as_of are evaluated as of this day (as the test suite does), so a case's result never
# depends on the day it is run.
CASE_AS_OF = dt.date(2026, 3, 1)


@dataclass(frozen=True)
class CaseResult:
    rule_id: str
    index: int
    name: str
    expected: str               # "fires" (with its severity when the case names one), "silent", "not-evaluated"
    got: str                    # the same words for what happened
    problems: tuple[str, ...]   # empty: passed

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        return f"{self.rule_id}[{self.index}] {self.name}"


def _outcome(rule_id: str, fired: dict[str, Advisory], skipped: dict[str, NotEvaluated]) -> str:
    if rule_id in fired:
        return f"fires ({fired[rule_id].severity})"
    if rule_id in skipped:
        return f"not-evaluated ({', '.join(skipped[rule_id].missing)} missing)"
    return "silent"


def _advisory_problems(advisory: Advisory) -> list[str]:
    """What a fired advisory must be, whatever the case: a short complete summary, filled texts, citations."""
    out = []
    if not 0 < len(advisory.summary) <= SUMMARY_MAX or "…" in advisory.summary:
        out.append(f"summary must be 1-{SUMMARY_MAX} characters, got {len(advisory.summary)} "
                   f"(cut: {advisory.summary!r})")
    if "unknown" in advisory.summary:
        out.append(f"summary shows an unknown value: {advisory.summary!r}")
    if "{" in advisory.summary + advisory.detail + advisory.action:
        out.append("a text still holds an unfilled {placeholder}")
    if not advisory.citations:
        out.append("no citation")
    return out


def check_case(rule_id: str, case: dict[str, Any], decision: Decision) -> tuple[str, str, list[str]]:
    """(expected, got, problems) of one case against the decision it produced."""
    fired = {a.rule_id: a for a in decision.advisories}
    skipped = {n.rule_id: n for n in decision.not_evaluated}
    expect, severity = case["expect"], case.get("severity")
    expected = f"fires ({severity})" if expect == "fires" and severity else expect
    got = _outcome(rule_id, fired, skipped)
    problems: list[str] = []
    if expect == "fires":
        if rule_id not in fired:
            problems.append(f"expected {expected}, got {got}")
        else:
            if severity and fired[rule_id].severity != severity:
                problems.append(f"expected {expected}, got {got}")
            problems += _advisory_problems(fired[rule_id])
    elif expect == "silent" and got != "silent":
        problems.append(f"expected silent, got {got}")
    elif expect == "not-evaluated":
        if rule_id not in skipped:
            problems.append(f"expected not-evaluated, got {got}")
        elif not skipped[rule_id].reason.endswith("not checked"):
            problems.append(f"not-evaluated reason should end 'not checked': {skipped[rule_id].reason!r}")
    return expected, got, problems


def run_case(evaluator: Evaluator, rule_id: str, index: int, case: dict[str, Any]) -> CaseResult:
    try:
        ctx = PatientContext.model_validate(case["context"])
    except ValidationError as exc:
        where = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        return CaseResult(rule_id, index, case["name"], case["expect"], "invalid context",
                          (f"the case's context is not a valid request: {where}",))
    try:
        decision = evaluator.evaluate(ctx, today=CASE_AS_OF)
    except EngineError as exc:
        return CaseResult(rule_id, index, case["name"], case["expect"], "engine error", (f"the engine failed: {exc}",))
    expected, got, problems = check_case(rule_id, case, decision)
    return CaseResult(rule_id, index, case["name"], expected, got, tuple(problems))


def run_cases(evaluator: Evaluator, pattern: str | None = None) -> Iterator[CaseResult]:
    """Every case of every active rule (a draft is not run, so neither are its cases), or those whose label
    `rule-id[i] name` contains `pattern` (or matches it as a shell-style wildcard)."""
    for rule in evaluator.kb.active_rules:
        for index, case in enumerate(rule.tests):
            label = f"{rule.id}[{index}] {case['name']}"
            if pattern and pattern.lower() not in label.lower() and not fnmatch.fnmatch(label, pattern):
                continue
            yield run_case(evaluator, rule.id, index, case)
