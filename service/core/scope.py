"""Scope: what a medication is for the LDN rules, and which rules concern an order, a draft or a booking.

Decided once, from the recognition and from rule data, for every channel: the core's facts, pharmacy order checks
and CDS Hooks read a medication the same way and show the same rules for the same subject.

Subjects: the product classes of what is being ordered (`ldn`, `naltrexone`, `opioid`, `other`, `unrecognized`),
`procedure` for a booking, `chart` for a look at the whole record. Which rules concern them:
  * LDN, or the whole chart: every rule;
  * an opioid or a naltrexone product other than LDN: the rules whose `coding.counterpart` names that class (the
    other side of a two-product conflict);
  * a procedure: the rules that need the procedure list;
  * anything else: none (an unrecognised order is still never a pass: see order_checks/verdict.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ..knowledge.rules import Rule
from ..knowledge.terminology import Terminology
from .medications import Classification

ProductClass = Literal["ldn", "naltrexone", "opioid", "other", "unrecognized"]
EVERY_RULE = frozenset({"ldn", "chart"})
ALWAYS_NEEDED = frozenset({"medications"})   # without it nobody can tell LDN or an opioid from nothing


def product_class(rec: Classification, text: str | None, terminology: Terminology) -> ProductClass:
    """What a recognised medication is to the LDN rules.

    A naltrexone product at an LDN strength, or of no known strength, is LDN (the dose rules then say what they could
    not check). Written as LDN but at a standard strength ("LDN 45 mg", "compounded naltrexone 50 mg") it is still
    LDN, at a wrong dose: the dose rules are the ones to say so. Other naltrexone (50 mg tablets, the extended-release
    injection, bupropion/naltrexone) is `naltrexone`."""
    if rec.kind == "opioid":
        return "opioid"
    if rec.kind == "naltrexone":
        if rec.naltrexone_form in ("ldn", "unspecified"):
            return "ldn"
        if rec.naltrexone_form == "oral-standard" and text and rec.ldn_marker:
            return "ldn"
        return "naltrexone"
    # Partly recognised is not recognised: it is never "other" (which can pass).
    return "other" if rec.kind != "unrecognised" and rec.certain else "unrecognized"


def counterparts(rule: Rule) -> frozenset[str]:
    """The product classes on the other side of this rule's two-product conflict (`coding.counterpart`)."""
    value = rule.coding.get("counterpart")
    if value is None:
        return frozenset()
    return frozenset([value] if isinstance(value, str) else value)


def concerns(rule: Rule, subjects: frozenset[str]) -> bool:
    """Does this rule check something about these subjects?"""
    if subjects & EVERY_RULE:
        return True
    if counterparts(rule) & subjects:
        return True
    return "procedure" in subjects and "procedures" in rule.requires


def concerned(rules: Iterable[Rule], subjects: frozenset[str]) -> list[Rule]:
    return [r for r in rules if r.active and concerns(r, subjects)]


def inputs_needed(rules: Iterable[Rule], subjects: frozenset[str]) -> frozenset[str]:
    """The patient data (rules/knowledge.yaml inputs, top level) the rules concerning these subjects need."""
    needed = set(ALWAYS_NEEDED)
    for rule in concerned(rules, subjects):
        needed.update(r.split(".")[0] for r in rule.requires)
    return frozenset(needed)
