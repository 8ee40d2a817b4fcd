"""How a pharmacy order plus the patient's profile becomes the one PatientContext.

There is no second rules path: the order is mapped into the core's input model and the shared Evaluator decides.
What the order is decides where it goes:
  * LDN (any naltrexone product at an LDN strength, compounded or not, or written as LDN): the `ldn` block,
    status proposed for a new start, active for a refill, proposed with the previous dose for a dose change;
  * an opioid or another naltrexone product: appended to the profile's medication list, status proposed
    (active for a refill), where the core's fact derivation finds it; the profile's LDN, if any, is found the same
    way, from the medication list;
  * anything else: not added; only the rules that concern it are checked (service/order_check_render.py).
Absent means unknown, as everywhere: with no medication list, the ordered opioid is not turned into one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.context import MAX_DAILY_DOSE_MG, MIN_DAILY_DOSE_MG, Code, LdnOrder, Medication, PatientContext
from ..core.scope import ProductClass, product_class
from ..core.units import administrations_per_day
from ..core.medications import Classification, classify
from ..knowledge.terminology import Terminology
from .models import Order, OrderCheckRequest, OrderKind, Profile

Category = ProductClass
CATEGORY_TEXT = {"ldn": "low-dose naltrexone (LDN)", "naltrexone": "a naltrexone product other than LDN",
                 "opioid": "an opioid", "other": "neither an opioid nor a naltrexone product",
                 "unrecognized": "not recognised"}

@dataclass(frozen=True)
class OrderPlan:
    """The order as understood, and the PatientContext the shared Evaluator decides on."""
    category: Category
    kind: OrderKind
    recognition: Classification
    context: PatientContext
    dose_mg: float | None                # per administration, in mg
    per_day: int | None                  # administrations per day; None when unknown
    daily_dose_mg: float | None          # None when it could not be computed
    profile_medications: int             # how many medications the profile listed (the order, if added, follows)
    notes: tuple[str, ...]
    unrecognized_codes: tuple[dict[str, Any], ...]


def _codes(codes: list[Code]) -> tuple[tuple[str, str], ...]:
    return tuple((c.system, c.code) for c in codes)


def _daily(dose: float | None, per_day: int | None, what: str, notes: list[str]) -> float | None:
    if dose is None or per_day is None:
        return None
    daily = round(dose * per_day, 6)
    if not MIN_DAILY_DOSE_MG <= daily <= MAX_DAILY_DOSE_MG:
        notes.append(f"{what} {dose:g} mg x {per_day} a day is {daily:g} mg a day, outside "
                     f"{MIN_DAILY_DOSE_MG:g}-{MAX_DAILY_DOSE_MG:g} mg: check dose and frequency; the daily dose "
                     "was not evaluated")
        return None
    return daily


def _unrecognized_codes(order: Order, profile: Profile | None, terminology: Terminology) -> list[dict[str, Any]]:
    """Every code the terminology does not know (an NDC without NDC data, a SNOMED code...): never ignored silently."""
    out = []
    groups = [("order", order.codes)]
    groups += [(f"profile.medications[{i}]", m.codes) for i, m in enumerate((profile and profile.medications) or ())]
    for field, codes in groups:
        for j, c in enumerate(codes):
            if classify(terminology, codes=((c.system, c.code),)).kind == "unrecognised":
                out.append({"field": f"{field}.codes[{j}]", "system": c.system, "code": c.code})
    return out


@dataclass(frozen=True)
class _LdnReading:
    ldn: LdnOrder
    dose_mg: float | None
    per_day: int | None
    daily_dose_mg: float | None


def _ldn(order: Order, rec: Classification, terminology: Terminology, notes: list[str]) -> _LdnReading:
    """The LDN order as the core's `ldn` block: daily doses from dose and frequency, status from the order kind."""
    dose = order.dose_mg
    if dose is None and rec.strength_mg is not None and MIN_DAILY_DOSE_MG <= rec.strength_mg <= MAX_DAILY_DOSE_MG:
        dose = rec.strength_mg
        notes.append(f"no dose given: the product strength, {dose:g} mg, is taken as the dose (one unit each time)")
    elif dose is None:
        notes.append("no dose given: the LDN dose rules could not be checked")
    if order.frequency is None:
        per_day: int | None = 1
        if dose is not None:
            notes.append("frequency not given: the dose is taken as the daily dose")
    else:
        per_day = administrations_per_day(order.frequency)
        if per_day is None:
            notes.append("frequency not understood: the daily dose is unknown, so the LDN dose rules could not be "
                         "checked")
    daily = _daily(dose, per_day, "dose", notes)
    previous = _daily(order.previous_dose_mg, per_day, "previous dose", notes)
    timing = order.timing
    if timing is None and order.frequency is not None and terminology.is_bedtime(order.frequency):
        timing = "bedtime"
    # A change without its previous dose is checked as an established regimen (active), so that it is not mistaken
    # for a new start; the titration step is then reported as not evaluated.
    status = {"new": "proposed", "refill": "active", "change": "proposed" if previous is not None else "active"}
    if order.kind == "change" and previous is None:
        notes.append("dose change without a usable previous dose: the titration step could not be checked")
    ldn = LdnOrder.of_medication(status[order.kind], dose_mg=daily, timing=timing, previous_dose_mg=previous,
                                 last_dose_change=order.last_dose_change)
    return _LdnReading(ldn, dose, per_day, daily)


def plan(request: OrderCheckRequest, terminology: Terminology) -> OrderPlan:
    order, profile = request.order, request.profile or Profile()
    notes: list[str] = []
    rec = classify(terminology, codes=_codes(order.codes), text=order.name, dose_mg=order.dose_mg)
    category = product_class(rec, order.name, terminology)
    medications = list(profile.medications) if profile.medications is not None else None
    reading = None
    if category == "ldn":
        reading = _ldn(order, rec, terminology, notes)
    elif category in ("opioid", "naltrexone"):
        if medications is None:
            notes.append(f"the order is {CATEGORY_TEXT[category]}, but no profile medication list was given: "
                         "whether the patient takes LDN is unknown")
        else:
            medications.append(Medication(name=order.name, codes=order.codes, dose_mg=order.dose_mg,
                                          status="active" if order.kind == "refill" else "proposed"))
    elif category == "other":
        notes.append(f"the order is {CATEGORY_TEXT['other']} ({', '.join(rec.ingredients)}): no LDN rule concerns it")
    else:
        notes.append("the ordered medication was not recognised: it could not be checked as an opioid or a "
                     "naltrexone product")

    context = PatientContext(as_of=request.as_of, ldn=reading.ldn if reading else None, medications=medications,
                             procedures=profile.procedures, renal=profile.renal)
    unknown_codes = _unrecognized_codes(order, request.profile, terminology)
    if unknown_codes:
        notes.append(f"{len(unknown_codes)} code(s) not recognised (see unrecognized_codes); names were used where "
                     "given")
    return OrderPlan(category=category, kind=order.kind, recognition=rec, context=context,
                     dose_mg=reading.dose_mg if reading else order.dose_mg,
                     per_day=reading.per_day if reading else None,
                     daily_dose_mg=reading.daily_dose_mg if reading else None,
                     profile_medications=len(profile.medications or ()), notes=tuple(notes),
                     unrecognized_codes=tuple(unknown_codes))

