"""The shared Decision -> the order check's verdict, coded issues, and what was not checked.

Which rules concern an order is the core's scope decision (service/core/scope.py), the same one CDS Hooks uses for
its drafts. An unrecognised order is never a pass: nobody can say what concerns it.
A rule that concerns the order but could not run (an input missing) blocks a pass, unless the facts that were given
already rule it out: one of its top-level `is` conditions contradicts a provided fact. Every LDN rule needs
`ldn.in_use` true, so when the medication list shows no LDN in use, a missing procedure list cannot hide a
perioperative hold. Only an info-only rule that could not run leaves a pass possible: its result could not have
changed the verdict, and it is still listed under not_evaluated.

Verdict: stop when an issue concerning the order is critical; review when one is a warning, when a rule that could
have raised a warning or a critical issue for the order was not evaluated, or when the order or a profile entry was
not recognised (each named by its field); pass otherwise. Issues found in the profile that the order neither causes nor changes are listed apart
(profile_issues) and do not change the verdict.
"""
from __future__ import annotations

import json

from ..core.decision import Advisory, Decision, NotEvaluated
from ..core.facts import Facts
from ..core.representation import AdvisoryOut, NotEvaluatedOut
from ..core.scope import concerns
from ..knowledge.rules import SEVERITY_RANK, Rule
from ..knowledge.vocabularies import V3_ACT_CODE, CodingDisplays
from .coding import resolve
from .mapping import CATEGORY_TEXT, Category, OrderPlan
from .models import (CodingOut, DurOut, NotApplicableOut, Order, OrderCheckResponse, OrderIssueOut, OrderOut,
                     UnrecognizedCodeOut, UnrecognizedItemOut, Verdict)

BLOCKS_PASS = frozenset({"critical", "warning"})


def ruled_out(rule: Rule, facts: Facts) -> str | None:
    """Why the provided facts already stop this rule from firing, or None (it might still fire)."""
    when = rule.when
    for condition in when.get("all", [when]):
        if "is" in condition:
            value = facts.lookup(condition["fact"])
            if value is not None and value != condition["is"]:
                return (f"cannot fire: {condition['fact']} is {json.dumps(value)} and the rule needs "
                        f"{json.dumps(condition['is'])}")
    return None


def _not_concerned(category: Category) -> str:
    if category == "unrecognized":
        return "not checked: the ordered medication was not recognised"
    if category == "other":
        return f"does not concern this order: it is {CATEGORY_TEXT['other']}"
    return f"checks LDN orders (or another product class); this order is {CATEGORY_TEXT[category]}"


def _coding(field: str, code: str, vocabulary: CodingDisplays) -> CodingOut:
    return CodingOut(system=V3_ACT_CODE, code=code, display=vocabulary.display(field, code))


def issue(a: Advisory, vocabulary: CodingDisplays) -> OrderIssueOut:
    codes = resolve(a.coding, a.severity, a.evidence)
    service = codes.professional_service
    dur = DurOut(
        reason_for_service=codes.reason_for_service,
        reason_for_service_display=vocabulary.display("ncpdp_reason_for_service", codes.reason_for_service),
        clinical_significance=codes.clinical_significance,
        clinical_significance_display=vocabulary.display("ncpdp_clinical_significance", codes.clinical_significance),
        professional_service=service,
        professional_service_display=vocabulary.display("professional_service", service) if service else None)
    return OrderIssueOut(
        **AdvisoryOut.fields_of(a), dur=dur, detected_issue_code=_coding("v3_act_code", codes.v3_act_code, vocabulary),
        suggested_mitigation=_coding("mitigation", codes.mitigation, vocabulary) if codes.mitigation else None)


def _verdict(category: Category, issues: list[Advisory], blocking: list[NotEvaluated],
             unidentified: list[UnrecognizedItemOut]) -> tuple[Verdict, list[str]]:
    reasons = [f"{i.severity}: {i.rule_id}: {i.summary}" for i in issues if i.severity in BLOCKS_PASS]
    reasons += [f"not evaluated, could have been {n.severity}: {n.rule_id}: {n.reason}" for n in blocking]
    # Uncertainty is never a pass: an entry nobody could identify might be an opioid or a naltrexone product.
    reasons += ["the ordered medication was not recognised: it could not be checked" if u.field == "order" else
                f"not recognised: {u.field}: it could not be checked as an opioid or a naltrexone product"
                for u in unidentified]
    if any(i.severity == "critical" for i in issues):
        return "stop", reasons
    if reasons:
        return "review", reasons
    if category == "other":
        return "pass", ["no LDN rule concerns this order"]
    info = sum(1 for i in issues if i.severity == "info")
    return "pass", ["every rule that could raise a warning or a critical issue for this order ran, and none did"
                    + (f" ({info} info issue(s) to note)" if info else "")]


def _order(plan: OrderPlan) -> OrderOut:
    rec = plan.recognition
    return OrderOut(category=plan.category, kind=plan.kind, ingredients=list(rec.ingredients),
                    recognised_by=rec.matched_by, matched=rec.matched, naltrexone_form=rec.naltrexone_form,
                    dose_mg=plan.dose_mg, administrations_per_day=plan.per_day, daily_dose_mg=plan.daily_dose_mg)


def _unrecognized(plan: OrderPlan, decision: Decision, order: Order) -> list[UnrecognizedItemOut]:
    out = [UnrecognizedItemOut(field="order", name=order.name, codes=list(order.codes))] \
        if plan.category == "unrecognized" else []
    for u in decision.facts.unrecognized:
        field = f"profile.medications[{u['index']}]" if u["index"] < plan.profile_medications else "order"
        out.append(UnrecognizedItemOut(field=field, name=u["name"], codes=u["codes"]))
    return out


def answer(order_check_id: str, plan: OrderPlan, decision: Decision, rules: dict[str, Rule], order: Order,
           vocabulary: CodingDisplays) -> OrderCheckResponse:
    category = plan.category
    subjects = frozenset({category})
    concerning: list[Advisory] = []
    issues: list[OrderIssueOut] = []
    profile_issues: list[OrderIssueOut] = []
    for advisory in decision.advisories:            # already most severe first
        if concerns(rules[advisory.rule_id], subjects):
            concerning.append(advisory)
            issues.append(issue(advisory, vocabulary))
        else:
            profile_issues.append(issue(advisory, vocabulary))
    not_evaluated: list[NotEvaluated] = []
    not_applicable: list[NotApplicableOut] = []
    skipped = {n.rule_id: n for n in decision.not_evaluated}
    fired = {a.rule_id for a in decision.advisories}
    for rule in sorted((r for r in rules.values() if r.active), key=lambda r: r.id):
        if rule.id in fired:
            continue
        if not concerns(rule, subjects):
            not_applicable.append(NotApplicableOut(rule_id=rule.id, rule_version=rule.version,
                                                   reason=_not_concerned(category)))
        elif rule.id in skipped:
            why = ruled_out(rule, decision.facts)
            if why:
                not_applicable.append(NotApplicableOut(rule_id=rule.id, rule_version=rule.version, reason=why))
            else:
                not_evaluated.append(skipped[rule.id])
    not_evaluated.sort(key=lambda n: (-SEVERITY_RANK[n.severity], n.rule_id))
    unidentified = _unrecognized(plan, decision, order)
    verdict, reasons = _verdict(category, concerning, [n for n in not_evaluated if n.severity in BLOCKS_PASS],
                                unidentified)
    return OrderCheckResponse(
        order_check_id=order_check_id, as_of=decision.as_of, knowledge_version=decision.knowledge_version,
        verdict=verdict, verdict_reasons=reasons, order=_order(plan), issues=issues, profile_issues=profile_issues,
        not_evaluated=[NotEvaluatedOut.of(n) for n in not_evaluated], not_applicable=not_applicable,
        unrecognized=unidentified,
        unrecognized_codes=[UnrecognizedCodeOut(**c) for c in plan.unrecognized_codes], notes=list(plan.notes))
