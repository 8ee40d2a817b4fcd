"""Patient context -> the one fact the engine sees (schemas/facts.schema.json), plus evidence and inputs.

Pure: the same context, terminology and as_of always give the same facts. Clinical thresholds do not live
here (they are rule parameters); this module only classifies and counts: which medications are opioids or
naltrexone products, which are current, how many days lie between dates.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

from .context import LdnOrder, Medication, PatientContext, Procedure
from ..knowledge.terminology import Terminology
from .medications import Classification, classify
from .scope import product_class

CURRENT = frozenset({"active", "proposed"})
# Forms whose naltrexone blocks opioids for a day or more (rule naltrexone-opioid-blockade). bupropion/naltrexone is
# among them: the sources put none of its doses in the low-dose range (see the rule file).
BLOCKING_FORMS = frozenset({"oral-standard", "extended-release-injection", "combination"})
DECIMALS = 4   # clinical quantities to 0.0001 (mg, mL/min): also keeps every float in plain decimal notation,
               # which durable-rules' JSON parser needs (it rejects exponents such as 1e-05: error 204)


Found = list[tuple[Medication, Classification]]


def _q(value: float) -> float:
    return round(float(value), DECIMALS)


@dataclass(frozen=True)
class Facts:
    as_of: dt.date
    fact: dict[str, Any]                 # what the engine matches on: no names, no free text (it is audited)
    evidence: dict[str, Any]             # what advisories show (may echo the caller's names back to it)
    inputs: frozenset[str]               # which inputs (rules/knowledge.yaml) were provided
    unrecognized: tuple[dict[str, Any], ...]

    def lookup(self, path: str) -> Any:
        """Value of a dotted fact path, or None when absent."""
        return walk(self.fact, path.split("."))


def walk(node: Any, keys: Sequence[str]) -> Any:
    """The value under `keys` in nested dicts, or None when absent."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _med_evidence(med: Medication, rec: Classification) -> dict[str, Any]:
    item: dict[str, Any] = {"name": med.name, "status": med.status, "ingredients": list(rec.ingredients),
                            "recognised_by": rec.matched_by, "matched": rec.matched}
    if rec.naltrexone_form:
        item["form"] = rec.naltrexone_form
    if rec.strength_mg is not None:
        item["strength_mg"] = rec.strength_mg
    return {k: v for k, v in item.items() if v is not None}


def _ldn_from_medications(ldn: Found) -> LdnOrder:
    """A patient whose only LDN record is a medication-list entry (pharmacy profiles, FHIR statements): the first
    current one, else the first. `ldn`: the list's LDN entries, in list order (not empty)."""
    med, rec = next(((m, r) for m, r in ldn if m.status in CURRENT), ldn[0])
    return LdnOrder.of_medication(med.status, dose_mg=rec.strength_mg)


def _procedure(prefix: str, p: Procedure, as_of: dt.date, procedures: dict[str, Any],
               evidence: dict[str, Any]) -> None:
    """The soonest procedure of a kind (periop: elective; nonelective) with opioids expected or not ruled out."""
    expected, days = ("yes" if p.opioids_expected else "unknown"), (p.date - as_of).days
    procedures[f"{prefix}_days_until"] = days
    procedures[f"{prefix}_opioids_expected"] = expected
    evidence[f"{prefix}_procedure"] = {
        "name": p.name, "date": p.date.isoformat(), "days_until": days, "opioids_expected": expected,
        "opioids_expected_text": "expected" if expected == "yes" else "not ruled out (not stated)"}


def _renal(sent: dict[str, Any], fact: dict[str, Any], evidence: dict[str, Any], inputs: set[str]) -> None:
    """Kidney function is known from an eGFR, a CKD stage or dialysis; "not on dialysis" alone says nothing about
    it, so the renal input then counts as not provided. G5D (stage 5 on dialysis) is G5 with dialysis."""
    if "egfr" in sent:
        sent["egfr"] = _q(sent["egfr"])
    if not ("egfr" in sent or "ckd_stage" in sent or sent.get("dialysis") is True):
        return
    renal = dict(sent)
    if renal.get("ckd_stage") == "G5D":
        renal.update(ckd_stage="G5", dialysis=True)
    inputs.add("renal")
    fact["renal"] = renal
    evidence["renal"] = sent


@dataclass
class _Builder:
    """What derive_facts collects, step by step."""
    fact: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    inputs: set[str] = field(default_factory=set)
    unrecognized: list[dict[str, Any]] = field(default_factory=list)


def _medications(meds: list[Medication], terminology: Terminology, out: _Builder) -> Found:
    """Count the current opioids and other naltrexone products; return the list's LDN entries. One pass: lists run
    to dozens of entries, nearly all of them neither opioid nor naltrexone."""
    out.inputs.add("medications")
    ldn: Found = []
    opioids: Found = []
    others: Found = []
    for i, m in enumerate(meds):
        r = classify(terminology, codes=m.codes, text=m.name, dose_mg=m.dose_mg)
        if not r.certain:
            # Unrecognised or partly recognised: reported with why, never an all-clear. A partly read opioid or
            # naltrexone product still counts as one below.
            out.unrecognized.append({"index": i, "name": m.name, "codes": [c.model_dump() for c in m.codes],
                                     "why": r.why})
        if r.kind == "opioid" and m.status in CURRENT:
            opioids.append((m, r))
        elif r.kind == "naltrexone":
            if product_class(r, m.name, terminology) == "ldn":
                ldn.append((m, r))
            elif m.status in CURRENT:
                others.append((m, r))
    blocking = [(m, r) for m, r in others if r.naltrexone_form in BLOCKING_FORMS]
    out.fact["medications"] = {"known": True, "count": len(meds), "current_opioid_count": len(opioids),
                               "current_other_naltrexone_count": len(others),
                               "current_blocking_naltrexone_count": len(blocking),
                               "unrecognized_count": len(out.unrecognized)}
    out.evidence["current_opioids"] = [_med_evidence(m, r) for m, r in opioids]
    out.evidence["other_naltrexone"] = [_med_evidence(m, r) for m, r in others]
    out.evidence["blocking_naltrexone"] = [_med_evidence(m, r) for m, r in blocking]
    return ldn


def _ldn(order: LdnOrder, origin: str, listed_in_use: bool, terminology: Terminology, as_of: dt.date,
         out: _Builder) -> None:
    """The LDN block as the engine sees it. In use when the block says so, or when the medication list shows a
    current LDN: a block that says on hold or stopped does not hide an LDN the list says is being taken."""
    out.inputs.add("ldn")
    ldn: dict[str, Any] = {"status": order.status, "in_use": order.status in CURRENT or listed_in_use,
                           "has_previous_dose": order.previous_dose_mg is not None}
    if order.dose_mg is not None:
        out.inputs.add("ldn.dose_mg")
        ldn["dose_mg"] = _q(order.dose_mg)
    if order.timing is not None:
        out.inputs.add("ldn.timing")
        ldn["at_bedtime"] = terminology.is_bedtime(order.timing)
    if order.previous_dose_mg is not None:
        out.inputs.add("ldn.previous_dose_mg")
        ldn["previous_dose_mg"] = _q(order.previous_dose_mg)
        if order.dose_mg is not None:
            ldn["dose_increase_mg"] = _q(ldn["dose_mg"] - ldn["previous_dose_mg"])
    if order.start_date is not None:
        ldn["days_since_start"] = (as_of - order.start_date).days
    if order.last_dose_change is not None:
        out.inputs.add("ldn.last_dose_change")
        ldn["days_since_last_change"] = (as_of - order.last_dose_change).days
    out.fact["ldn"] = ldn
    out.evidence["ldn"] = {"source": origin, **order.model_dump(mode="json", exclude_none=True)}


def _procedures(procs: list[Procedure], as_of: dt.date, out: _Builder) -> None:
    out.inputs.add("procedures")
    upcoming = sorted((p for p in procs if p.date >= as_of), key=lambda p: p.date)
    # Elective or not stated (planned) for the perioperative hold; urgent or emergency (elective false) apart.
    elective = [p for p in upcoming if p.elective is not False]
    procedures: dict[str, Any] = {"known": True, "upcoming_elective_count": len(elective)}
    for prefix, candidates in (("periop", elective), ("nonelective", (p for p in upcoming if p.elective is False))):
        soonest = next((p for p in candidates if p.opioids_expected is not False), None)
        if soonest is not None:
            _procedure(prefix, soonest, as_of, procedures, out.evidence)
    out.fact["procedures"] = procedures


def derive_facts(ctx: PatientContext, terminology: Terminology, as_of: dt.date) -> Facts:
    out = _Builder()
    listed: Found = [] if ctx.medications is None else _medications(ctx.medications, terminology, out)
    order, origin = ctx.ldn, "ldn"
    if order is None and listed:
        order, origin = _ldn_from_medications(listed), "medications"
    if order is not None:
        _ldn(order, origin, any(m.status in CURRENT for m, _ in listed), terminology, as_of, out)
    elif ctx.medications is not None:
        # The medication list is known and holds no LDN: the patient is not on LDN (rules simply do not fire).
        out.inputs.add("ldn")
        out.fact["ldn"] = {"status": "none", "in_use": False, "has_previous_dose": False}
        out.evidence["ldn"] = {"source": "medications", "status": "none"}
    if ctx.procedures is not None:
        _procedures(ctx.procedures, as_of, out)
    if ctx.renal is not None:
        _renal(ctx.renal.model_dump(exclude_none=True), out.fact, out.evidence, out.inputs)
    return Facts(as_of=as_of, fact=out.fact, evidence=out.evidence, inputs=frozenset(out.inputs),
                 unrecognized=tuple(out.unrecognized))
