"""FHIR to facts: a hook request and the resources gathered for it -> the core's PatientContext. Pure.

Mapping choices (README, "CDS Hooks"):
* Orders in `draftOrders` are what is being ordered. A draft LDN order becomes `ldn` (status proposed; on
  re-sign, the order's own status); every other draft medication becomes a medication with status proposed.
  MedicationOrder (DSTU2) is read like MedicationRequest.
* Active MedicationRequests and MedicationStatements of the record become medications (an active LDN there is
  how a patient "on LDN" is recognised, by the core). With a draft LDN order, an active LDN order's dose is the
  previous dose (a renewal is not a new start).
* A drug: medicationCodeableConcept, or the referenced / contained Medication's code and its ingredients' codes
  and names (compounded products are often named only there).
* Doses: doseAndRate.doseQuantity (R4) or doseQuantity (STU3/DSTU2) in mg, mcg or g, or in tablets/capsules
  times the product strength (the name's or code's, else the one active ingredient's strength); times the
  administrations per day from timing.repeat. Unreadable: no dose (the dose rules are then reported as not
  evaluated, never passed).
* eGFR: the latest Observation with an eGFR LOINC code; CKD stage and dialysis from active Conditions (ICD-10-CM,
  SNOMED CT). No eGFR and no CKD condition is "kidney function not provided", not "normal".
* Appointments, Procedures and ServiceRequests with a date are procedures when they are surgical (coded
  387713003, or surgical words without "follow-up"/"pre-op"/...); elective unless marked emergency or urgent;
  perioperative opioids unknown (null): the core treats that as "not ruled out".
* The clinical codes (eGFR, CKD, dialysis, surgery, EventTiming) are knowledge, passed in as `codes`:
  rules/vocabularies/clinical-codes.yaml, KnowledgeBase.clinical_codes.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..core.context import (LDN_STATUS, MAX_DAILY_DOSE_MG, MIN_DAILY_DOSE_MG, Code, LdnOrder, Medication,
                            PatientContext, Procedure, Renal)
from ..core.scope import ProductClass, inputs_needed, product_class
from ..knowledge.rules import Rule
from ..core.medications import Classification, classify
from ..knowledge.terminology import Terminology
from ..knowledge.units import MG_PER_UNIT
from ..knowledge.vocabularies import ClinicalCodes
from . import fhir
from .codes import ICD10_SYSTEMS, LOINC, SNOMED
from . import services as keys

MEDICATION_ORDER_TYPES = ("MedicationRequest", "MedicationOrder")
PROCEDURE_TYPES = ("Appointment", "ServiceRequest", "Procedure")
MAX_MEDICATIONS = 500   # PatientContext limits
MAX_PROCEDURES = 100
_UNITS = {"tab", "tabs", "tablet", "tablets", "{tbl}", "{tablet}", "cap", "caps", "capsule", "capsules",
          "{capsule}", "{cap}", "1", "{dose}", "dose", "doses", "each", "ea"}
_PER_DAY = {"h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30}

# FHIR status -> the context's medication status (None: the record is not a medication the patient has).
_REQUEST_STATUS = {"active": "active", "on-hold": "on-hold", "draft": "proposed", "completed": "completed",
                   "stopped": "stopped", "cancelled": "stopped", "entered-in-error": None}
_STATEMENT_STATUS = {"active": "active", "intended": "proposed", "on-hold": "on-hold", "completed": "completed",
                     "stopped": "stopped", "not-taken": None, "entered-in-error": None}
_DRAFT_STATUS = {"draft": "proposed", "active": "active", "on-hold": "on-hold", "completed": "completed",
                 "stopped": "stopped", "cancelled": "stopped", "entered-in-error": None}


@dataclass(frozen=True)
class MedicationItem:
    resource: dict[str, Any]
    medication: Medication
    recognition: Classification
    product: ProductClass
    draft: bool = False
    selected: bool = False
    timing: str | None = None

    @property
    def key(self) -> tuple[str, str] | None:
        rid = fhir.text(self.resource.get("id"))
        return (str(self.resource.get("resourceType")), rid) if rid else None

    @property
    def is_ldn(self) -> bool:
        return self.product == "ldn"

    @property
    def is_opioid(self) -> bool:
        return self.product == "opioid"

    @property
    def is_other_naltrexone(self) -> bool:
        return self.product == "naltrexone"

    @property
    def current(self) -> bool:
        return self.medication.status in ("active", "proposed")


@dataclass(frozen=True)
class ProcedureItem:
    resource: dict[str, Any]
    procedure: Procedure
    draft: bool = False
    selected: bool = False

    @property
    def key(self) -> tuple[str, str] | None:
        rid = fhir.text(self.resource.get("id"))
        return (str(self.resource.get("resourceType")), rid) if rid else None


@dataclass(frozen=True)
class Drafts:
    """What the hook's context puts in front of the service: orders being placed, appointments being booked."""
    medications: tuple[MedicationItem, ...] = ()
    procedures: tuple[ProcedureItem, ...] = ()
    scope: frozenset[str] = frozenset()   # ldn | opioid | naltrexone | unrecognized | procedure | chart

    def selected(self, predicate: str) -> list[MedicationItem]:
        return [m for m in self.medications if m.selected and getattr(m, predicate)]


@dataclass(frozen=True)
class Mapped:
    context: PatientContext
    drafts: Drafts
    ldn_draft: MedicationItem | None           # the draft LDN order (order hooks)
    ldn_record: MedicationItem | None          # the record's current LDN MedicationRequest
    notes: dict[str, str] = field(default_factory=dict)   # input -> why it is missing (for the info card)
    ldn_in_record: bool = False                # any current LDN order or statement in the record
    unreadable: tuple[str, ...] = ()           # values given but unusable, treated as absent (for the info card)


# --- medications --------------------------------------------------------------------------------------------------

Drug = tuple[dict[str, Any], str | None, list[dict[str, Any]], list[dict[str, Any]]]


def medication_concept(resource: dict[str, Any], index: fhir.ResourceIndex) -> Drug:
    """(CodeableConcept naming the drug, display of an unresolved reference, the Medication's ingredients and the
    concept each is: a compounded product, LDN among them, is often named only there)."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None, [], []
    reference = fhir.obj(resource.get("medicationReference"))
    medication = index.resolve(reference, container=resource)
    if medication is None:
        return {}, fhir.text(reference.get("display")), [], []
    ingredients = (fhir.objs(medication.get("ingredient"))                                  # STU3, R4, R5
                   or fhir.objs(fhir.obj(medication.get("product")).get("ingredient")))     # DSTU2
    items = [ingredient_concept(i, index, (medication, resource)) for i in ingredients]
    if isinstance(medication.get("code"), dict):
        return medication["code"], None, ingredients, items
    return {}, fhir.text(reference.get("display")), ingredients, items


def ingredient_concept(ingredient: dict[str, Any], index: fhir.ResourceIndex,
                       containers: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """What an ingredient is: its itemCodeableConcept (STU3, R4) or item.concept (R5); else the code of the Substance
    or Medication its reference points to (itemReference; DSTU2's item; R5's item.reference), else that
    reference's display as the text."""
    concept = ingredient.get("itemCodeableConcept")
    if isinstance(concept, dict):
        return concept
    item = fhir.obj(ingredient.get("item"))
    if isinstance(item.get("concept"), dict):
        return item["concept"]
    reference = fhir.obj(ingredient.get("itemReference")) or fhir.obj(item.get("reference")) or item
    for container in containers:        # "#id": contained in the Medication, or beside it in the order
        target = index.resolve(reference, container=container)
        if target is not None and isinstance(target.get("code"), dict):
            return target["code"]
    display = fhir.text(reference.get("display"))
    return {"text": display} if display else {}


def unresolved_medication_references(resources: Iterable[dict[str, Any]], index: fhir.ResourceIndex) -> list[str]:
    out: list[str] = []
    for r in resources:
        if "medicationCodeableConcept" in r or fhir.resource_type(r) not in (*MEDICATION_ORDER_TYPES,
                                                                              "MedicationStatement"):
            continue
        reference = fhir.obj(r.get("medicationReference"))
        ref = fhir.text(reference.get("reference"))
        key = fhir.reference_key(ref)
        if ref and key and key[0] == "Medication" and index.resolve(ref, container=r) is None and ref not in out:
            out.append(ref)
    return out


# The same medications come back call after call (a chart's list, the value sets' products): what a name, codes,
# status and dose read as (the core's classifier and scope) is kept, with the frozen Medication model, so one
# validated instance serves every call. Bounded; keyed by plain strings (cheap to hash).
@functools.lru_cache(maxsize=8192)
def _reading(terminology: Terminology, name: str | None, status: str, pairs: tuple[tuple[str, str], ...],
             dose: float | None) -> tuple[Medication, Classification, ProductClass]:
    recognition = classify(terminology, codes=pairs, text=name, dose_mg=dose)
    medication = Medication(name=name, status=status,  # type: ignore[arg-type]
                            codes=[Code(system=s, code=c) for s, c in pairs], dose_mg=dose)
    return medication, recognition, product_class(recognition, name, terminology)


def _name_and_codes(concept: dict[str, Any], fallback: str | None,
                    ingredients: list[dict[str, Any]]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """ingredients: the concepts of the product's ingredients (ingredient_concept)."""
    """The drug's name (the concept's text, else the first coding display, else the reference's display), with the
    names of ingredients it does not already say, and every (system, code) pair of the product and of its
    ingredients (at most 20, of plausible length): one reading for the classifier, the facts and the cards."""
    found: list[tuple[str, str]] = []
    name = _read_concept(concept, found)
    if name is None and fallback is not None:
        name = fhir.text(fallback, 300)
    if ingredients:
        name = _with_ingredients(name, ingredients, found)
    return name, tuple(found)


def _with_ingredients(name: str | None, ingredients: list[dict[str, Any]], found: list[tuple[str, str]]) -> str | None:
    """The name, with the ingredients' names it does not already say; their codes added to `found`."""
    words = [w for w in (_read_concept(i, found) for i in ingredients) if w]
    new = [w for w in dict.fromkeys(words) if name is None or w.lower() not in name.lower()]
    return (f"{name} ({', '.join(new)})" if name else ", ".join(new))[:300] if new else name


def _read_concept(concept: dict[str, Any], found: list[tuple[str, str]]) -> str | None:
    """The concept's text, else its first coding display; its codes added to `found`. One pass over the codings."""
    name = fhir.text(concept.get("text"), 300)
    for coding in fhir.objs(concept.get("coding")):
        if name is None:
            name = fhir.text(coding.get("display"), 300)
        system, code = fhir.text(coding.get("system")), fhir.text(coding.get("code"))
        if system and code and len(system) <= 200 and len(code) <= 64 and len(found) < 20:
            found.append((system, code))
    return name


def ingredient_strength_mg(ingredients: list[dict[str, Any]]) -> float | None:
    """The strength per tablet or capsule of a one-ingredient product (Medication.ingredient.strength, a Ratio in
    mg, mcg or g per 1): what a dose in capsules is multiplied by when the name gives no strength."""
    strengths = [fhir.obj(i.get("strength")) for i in ingredients
                 if i.get("isActive") is not False and fhir.obj(i.get("strength"))]
    if len(strengths) != 1:
        return None
    numerator, denominator = fhir.obj(strengths[0].get("numerator")), fhir.obj(strengths[0].get("denominator"))
    value = fhir.number(numerator.get("value"))
    unit = (fhir.text(numerator.get("code")) or fhir.text(numerator.get("unit")) or "").lower()
    per = fhir.number(denominator.get("value")) if denominator else 1.0
    per_unit = (fhir.text(denominator.get("code")) or fhir.text(denominator.get("unit")) or "1").lower()
    if value is None or value <= 0 or unit not in MG_PER_UNIT or per != 1 or per_unit not in _UNITS:
        return None
    return value * MG_PER_UNIT[unit]


def _dose_quantities(dosage: dict[str, Any]) -> list[dict[str, Any]]:
    quantities = [fhir.obj(d.get("doseQuantity")) for d in fhir.objs(dosage.get("doseAndRate"))]
    quantities.append(fhir.obj(dosage.get("doseQuantity")))        # STU3 / DSTU2
    return [q for q in quantities if q]


def _per_administration_mg(dosage: dict[str, Any], strength_mg: float | None) -> float | None:
    for q in _dose_quantities(dosage):
        value = fhir.number(q.get("value"))
        unit = (fhir.text(q.get("code")) or fhir.text(q.get("unit")) or "").lower()
        if value is None or value <= 0:
            continue
        if unit in MG_PER_UNIT:
            return value * MG_PER_UNIT[unit]
        if unit in _UNITS and strength_mg:
            return value * strength_mg
    return None


def _administrations_per_day(dosage: dict[str, Any]) -> float | None:
    repeat = fhir.obj(fhir.obj(dosage.get("timing")).get("repeat"))
    if not repeat or ("frequency" not in repeat and "period" not in repeat):
        return 1.0                      # no schedule given: a daily medicine taken once a day
    frequency = fhir.number(repeat["frequency"]) if "frequency" in repeat else 1.0
    period = fhir.number(repeat["period"]) if "period" in repeat else 1.0
    if frequency is None or period is None:         # given but unreadable: the schedule is unknown, not daily
        return None
    unit = fhir.text(repeat.get("periodUnit")) or fhir.text(repeat.get("periodUnits")) or "d"   # DSTU2: periodUnits
    if unit not in _PER_DAY or period <= 0 or frequency <= 0:
        return None
    return frequency / period * _PER_DAY[unit]


def daily_dose_mg(resource: dict[str, Any], strength_mg: float | None) -> float | None:
    total = 0.0
    dosages = fhir.objs(resource.get("dosageInstruction")) or fhir.objs(resource.get("dosage"))
    for dosage in dosages:
        if dosage.get("asNeededBoolean") is True:
            continue
        per_admin, per_day = _per_administration_mg(dosage, strength_mg), _administrations_per_day(dosage)
        if per_admin is not None and per_day is not None:
            total += per_admin * per_day
    total = round(total, 4)
    return total if MIN_DAILY_DOSE_MG <= total <= MAX_DAILY_DOSE_MG else None


def unreadable_dose_fields(resource: dict[str, Any]) -> list[str]:
    """The dose and schedule numbers of an order that were given but are not usable (non-finite, beyond a float,
    implausibly large): the dose is then unknown, and the card says why."""
    field_ = "dosageInstruction" if "dosageInstruction" in resource else "dosage"
    out: list[str] = []
    for i, dosage in enumerate(fhir.items(resource.get(field_))):
        d = fhir.obj(dosage)
        paths = [(f"doseAndRate[{j}].doseQuantity.value", fhir.obj(fhir.obj(r).get("doseQuantity")).get("value"))
                 for j, r in enumerate(fhir.items(d.get("doseAndRate")))]
        paths.append(("doseQuantity.value", fhir.obj(d.get("doseQuantity")).get("value")))
        repeat = fhir.obj(fhir.obj(d.get("timing")).get("repeat"))
        paths += [(f"timing.repeat.{k}", repeat.get(k)) for k in ("frequency", "period")]
        out += [f"{field_}[{i}].{path}" for path, value in paths if fhir.unusable_number(value)]
    return out


def administration_time(resource: dict[str, Any], terminology: Terminology, codes: ClinicalCodes) -> str | None:
    """'bedtime' when any timing says so; else the first structured time of day (EventTiming); else unknown.
    Free-text instructions only ever confirm bedtime: "take daily" is not a time of day."""
    structured: list[str] = []
    texts: list[str] = []
    for dosage in fhir.objs(resource.get("dosageInstruction")) or fhir.objs(resource.get("dosage")):
        timing = fhir.obj(dosage.get("timing"))
        for when in fhir.items(fhir.obj(timing.get("repeat")).get("when")):
            if isinstance(when, str) and when in codes.event_timing:
                structured.append(codes.event_timing[when])
        code = fhir.obj(timing.get("code"))
        texts += fhir.concept_texts(code) + [c for _, c in fhir.codes(code) if c]
        texts += [t for t in [fhir.text(dosage.get("text"))] if t]
    if any(terminology.is_bedtime(t) for t in structured + texts):
        return "bedtime"
    return structured[0] if structured else None


def read_medication(resource: dict[str, Any], index: fhir.ResourceIndex, terminology: Terminology,
                    codes: ClinicalCodes, *,
                    draft: bool = False, selected: bool = False, timing: bool = True) -> MedicationItem | None:
    """timing=False skips the administration time (only the draft LDN order's is used; build_context reads the
    record's medications without it)."""
    rtype = fhir.resource_type(resource)
    raw_status = fhir.text(resource.get("status")) or "unknown"
    if draft:
        status = _DRAFT_STATUS.get(raw_status, "proposed")
    elif rtype == "MedicationStatement":
        status = _STATEMENT_STATUS.get(raw_status, "active")
    else:
        status = _REQUEST_STATUS.get(raw_status, "active")   # unknown is not assumed to be safe
    if status is None:
        return None
    concept, fallback, ingredients, items = medication_concept(resource, index)
    name, pairs = _name_and_codes(concept, fallback, items)
    if name is None and not pairs:
        return None
    medication, recognition, product = _reading(terminology, name, status, pairs, None)
    if recognition.kind == "naltrexone":
        # The daily dose is read for naltrexone only: it is what tells LDN from the standard strengths, and no rule
        # reads another medication's dose.
        dose = daily_dose_mg(resource, recognition.strength_mg or ingredient_strength_mg(ingredients))
        medication, recognition, product = _reading(terminology, name, status, pairs, dose)
    return MedicationItem(resource, medication, recognition, product, draft, selected,
                          administration_time(resource, terminology, codes) if timing else None)


# --- procedures ---------------------------------------------------------------------------------------------------

# The concepts a procedure is described by, the most specific first: the first text names it on cards (an
# Appointment's own description before its service type, a code before a category such as "Surgical procedure").
_DESCRIBED_BY = {"Appointment": ("serviceType", "reasonCode", "reason", "appointmentType", "specialty",
                                 "serviceCategory"),
                 "ServiceRequest": ("code", "category"), "Procedure": ("code", "category")}
_CODED_BY = frozenset({"category", "serviceCategory", "serviceType", "code"})   # where the surgical code counts

Described = tuple[list[str], bool]      # (texts, most specific first; coded as a surgical procedure)


def _description(resource: dict[str, Any], codes: ClinicalCodes) -> Described:
    """A procedure's texts and whether it carries the SNOMED CT surgical procedure code: one pass over its concepts."""
    rtype = resource.get("resourceType")
    texts = [t for t in [fhir.text(resource.get("description"))] if t] if rtype == "Appointment" else []
    coded = False
    surgical = (SNOMED, codes.surgical_procedure)
    for name in _DESCRIBED_BY.get(str(rtype), ()):
        for concept in fhir.objs(resource.get(name)):
            texts += fhir.concept_texts(concept)
            coded = coded or (name in _CODED_BY and surgical in fhir.codes(concept))
    return texts, coded


def _worded_surgical(texts: list[str], codes: ClinicalCodes) -> bool:
    words = " ".join(texts).lower()
    return codes.surgery_regex.search(words) is not None and codes.not_surgery_regex.search(words) is None


def is_surgical(resource: dict[str, Any], index: fhir.ResourceIndex, codes: ClinicalCodes, depth: int = 0,
                described: Described | None = None) -> bool:
    """described: the resource's _description when the caller has it already."""
    texts, coded = _description(resource, codes) if described is None else described
    if coded:
        return True
    if resource.get("resourceType") == "Appointment":
        kinds = {c for t in fhir.objs(resource.get("appointmentType")) for _, c in fhir.codes(t) if c}
        if kinds & codes.appointment_not_surgery:
            return False
        if depth == 0 and any(is_surgical(r, index, codes, 1) for r in _based_on(resource, index)):
            return True
    return _worded_surgical(texts, codes)


def _based_on(resource: dict[str, Any], index: fhir.ResourceIndex) -> list[dict[str, Any]]:
    return [r for r in (index.resolve(ref) for ref in fhir.objs(resource.get("basedOn"))) if r is not None]


def procedure_references(resources: Iterable[dict[str, Any]], index: fhir.ResourceIndex) -> list[str]:
    """basedOn ServiceRequests of Appointments that are not in the request (fetched when FHIR access allows)."""
    out: list[str] = []
    for r in resources:
        for ref in fhir.objs(r.get("basedOn")) if r.get("resourceType") == "Appointment" else ():
            text = fhir.text(ref.get("reference"))
            key = fhir.reference_key(text)
            if text and key and key[0] == "ServiceRequest" and index.resolve(text) is None and text not in out:
                out.append(text)
    return out


def _date_candidates(r: dict[str, Any]) -> list[Any]:
    rtype = r.get("resourceType")
    if rtype == "Appointment":
        return [r.get("start")] + [fhir.obj(p).get("start") for p in fhir.items(r.get("requestedPeriod"))]
    if rtype == "ServiceRequest":
        return ([r.get("occurrenceDateTime"), fhir.obj(r.get("occurrencePeriod")).get("start")]
                + fhir.items(fhir.obj(r.get("occurrenceTiming")).get("event")))
    if rtype == "Procedure":
        return [r.get("performedDateTime"), fhir.obj(r.get("performedPeriod")).get("start")]
    return []


def _procedure_date(resource: dict[str, Any]) -> dt.date | None:
    return next((d for d in map(fhir.parse_date, _date_candidates(resource)) if d is not None), None)


_CLOSED = {"Appointment": {"cancelled", "noshow", "entered-in-error", "fulfilled", "arrived", "checked-in"},
           "ServiceRequest": {"revoked", "completed", "entered-in-error"},
           "Procedure": {"completed", "not-done", "stopped", "entered-in-error"}}


def _elective(resource: dict[str, Any], index: fhir.ResourceIndex, codes: ClinicalCodes) -> bool:
    for r in [resource, *(_based_on(resource, index) if resource.get("resourceType") == "Appointment" else [])]:
        if fhir.text(r.get("priority")) in codes.urgent_priorities:
            return False
        kinds = {c for t in fhir.objs(r.get("appointmentType")) for _, c in fhir.codes(t) if c}
        if codes.appointment_emergency in kinds:
            return False
    return True


def read_procedure(resource: dict[str, Any], index: fhir.ResourceIndex, codes: ClinicalCodes, *,
                   draft: bool = False, selected: bool = False) -> ProcedureItem | None:
    """A surgical Appointment / ServiceRequest / Procedure with a date, else None."""
    rtype = fhir.resource_type(resource)
    if rtype not in PROCEDURE_TYPES or fhir.text(resource.get("status")) in _CLOSED[rtype]:
        return None
    day = _procedure_date(resource)
    described = _description(resource, codes) if day is not None else None
    if described is None or not is_surgical(resource, index, codes, described=described):
        return None
    based_on = _based_on(resource, index) if rtype == "Appointment" else []
    names = described[0] + [t for r in based_on for t in _description(r, codes)[0]]
    name = names[0][:300] if names else None           # texts are read by fhir.text: folded, never empty
    return ProcedureItem(resource, Procedure(name=name, date=day, elective=_elective(resource, index, codes),
                                             opioids_expected=None), draft, selected)


# --- the hook's own resources -------------------------------------------------------------------------------------

def read_drafts(hook: str, context: dict[str, Any], index: fhir.ResourceIndex, terminology: Terminology,
                codes: ClinicalCodes, today: dt.date) -> Drafts:
    """The orders being placed or the appointments being booked, and what they make this call about."""
    if hook == "patient-view":
        return Drafts(scope=frozenset({"chart"}))
    if hook == "appointment-book":
        booked = [p for p in (read_procedure(r, index, codes, draft=True, selected=True)
                              for r in fhir.resources(context.get("appointments"))) if p is not None]
        upcoming = any(p.procedure.date >= today for p in booked)
        return Drafts(procedures=tuple(booked), scope=frozenset({"procedure"} if upcoming else ()))
    selections = {s for s in fhir.items(context.get("selections")) if isinstance(s, str)}
    meds: list[MedicationItem] = []
    procs: list[ProcedureItem] = []
    for r in fhir.resources(context.get("draftOrders")):
        ref = f"{r.get('resourceType')}/{r.get('id')}"
        selected = not selections or ref in selections
        if fhir.resource_type(r) in MEDICATION_ORDER_TYPES:
            item = read_medication(r, index, terminology, codes, draft=True, selected=selected)
            if item is not None:
                meds.append(item)
        elif fhir.resource_type(r) in PROCEDURE_TYPES:
            proc = read_procedure(r, index, codes, draft=True, selected=selected)
            if proc is not None:
                procs.append(proc)
    chosen = [m for m in meds if m.selected and m.medication.status != "stopped"]
    scope = {m.product for m in chosen} & {"ldn", "opioid", "naltrexone", "unrecognized"}
    if any(p.selected and p.procedure.date >= today for p in procs):
        scope.add("procedure")
    return Drafts(tuple(meds), tuple(procs), frozenset(scope))


# Prefetch keys that carry each input (rules/knowledge.yaml), required first.
_KEYS_OF_INPUT = {"medications": (keys.MEDICATION_REQUESTS, keys.MEDICATION_STATEMENTS),
                  "renal": (keys.EGFR, keys.CONDITIONS),
                  "procedures": (keys.APPOINTMENTS, keys.PROCEDURES, keys.SERVICE_REQUESTS)}


def data_needs(scope: frozenset[str], rules: Iterable[Rule]) -> tuple[frozenset[str], frozenset[str]]:
    """(required, optional) prefetch keys: what the rules concerning this scope need (service/core/scope.py). The
    medication list is required wherever a rule applies: without it the service cannot tell whether the patient is
    on LDN or an opioid (412). For a draft it could not identify, the list is only wanted: the card saying so
    needs to know whether the patient is on LDN, and no card is better than a 412 for an unknown product."""
    required = frozenset({keys.MEDICATION_REQUESTS}) if scope - {"unrecognized"} else frozenset()
    wanted = {k for i in inputs_needed(rules, scope) for k in _KEYS_OF_INPUT.get(i, ())}
    return required, frozenset(wanted - required)


# --- the record ---------------------------------------------------------------------------------------------------

def _latest_egfr(observations: list[dict[str, Any]], codes: ClinicalCodes,
                 unreadable: list[str] | None = None) -> float | None:
    """The newest readable eGFR; each eGFR Observation whose value is not a usable number is named in
    `unreadable` (skipped, never read as normal: one bad result must not stop the others being used)."""
    found: list[tuple[str, float]] = []
    for o in observations:
        if fhir.resource_type(o) != "Observation" or o.get("status") in ("cancelled", "entered-in-error"):
            continue
        if not any(s == LOINC and c in codes.egfr_loinc for s, c in fhir.codes(o.get("code"))):
            continue
        quantity = fhir.obj(o.get("valueQuantity"))
        value = fhir.number(quantity.get("value"))
        if fhir.unusable_number(quantity.get("value")) and unreadable is not None:
            unreadable.append(f"Observation/{fhir.text(o.get('id')) or '(no id)'} valueQuantity.value")
        unit = (fhir.text(quantity.get("code")) or fhir.text(quantity.get("unit")) or "ml/min").lower()
        if value is None or not 0 <= value <= 250 or "ml/min" not in unit:
            continue
        when = (fhir.text(o.get("effectiveDateTime")) or fhir.text(fhir.obj(o.get("effectivePeriod")).get("start"))
                or fhir.text(o.get("issued")) or "")
        found.append((when, round(value, 4)))
    return max(found, key=lambda f: f[0])[1] if found else None


def _renal_conditions(conditions: list[dict[str, Any]], codes: ClinicalCodes) -> tuple[str | None, bool]:
    stages: list[str] = []
    dialysis = False
    for c in conditions:
        if fhir.resource_type(c) != "Condition":
            continue
        clinical = {k for _, k in fhir.codes(c.get("clinicalStatus"))} | {fhir.text(c.get("clinicalStatus"))}
        verification = {k for _, k in fhir.codes(c.get("verificationStatus"))}
        if clinical & {"inactive", "resolved", "remission"} or verification & {"refuted", "entered-in-error"}:
            continue
        for system, code in fhir.codes(c.get("code")):
            if not code:
                continue
            if system in ICD10_SYSTEMS:
                hit = codes.icd10_renal_undotted.get(code.upper().replace(".", ""))
            else:
                hit = codes.snomed_renal.get(code) if system == SNOMED else None
            if hit:
                if hit[0]:
                    stages.append(hit[0])
                dialysis = dialysis or hit[1]
    stage = max(stages, key=codes.ckd_stage_order.index) if stages else None
    return stage, dialysis


def _renal(record: dict[str, list[dict[str, Any]] | None], codes: ClinicalCodes,
           unreadable: list[str]) -> Renal | None:
    egfr = _latest_egfr(record.get(keys.EGFR) or [], codes, unreadable)
    stage, dialysis = _renal_conditions(record.get(keys.CONDITIONS) or [], codes)
    if egfr is None and stage is None and not dialysis:
        return None
    return Renal(egfr=egfr, ckd_stage=stage, dialysis=True if dialysis else None)


def _notes(record: dict[str, list[dict[str, Any]] | None], renal: Renal | None, procedures_known: bool,
           codes: ClinicalCodes) -> dict[str, str]:
    notes: dict[str, str] = {}
    if record.get(keys.MEDICATION_STATEMENTS) is None:
        notes["medication_statements"] = ("Patient-reported medications (MedicationStatement) were not available: "
                                          "an opioid or naltrexone product recorded only there was not checked.")
    if renal is None:
        notes["renal"] = ("No eGFR result (LOINC " + ", ".join(codes.egfr_loinc) + ") and no chronic kidney "
                          "disease or dialysis condition was found in the record."
                          if record.get(keys.EGFR) is not None else
                          "eGFR results and kidney conditions could not be retrieved from the record.")
    if not procedures_known:
        notes["procedures"] = "Upcoming appointments could not be retrieved from the record."
    return notes


def _record_medications(record: dict[str, list[dict[str, Any]] | None], index: fhir.ResourceIndex,
                        terminology: Terminology, codes: ClinicalCodes, draft_keys: set[Any]) -> list[MedicationItem]:
    """The record's medication orders and statements, the hook's own drafts left out."""
    found: list[MedicationItem] = []
    for key, types in ((keys.MEDICATION_REQUESTS, MEDICATION_ORDER_TYPES),
                       (keys.MEDICATION_STATEMENTS, ("MedicationStatement",))):
        for r in record.get(key) or []:
            if fhir.resource_type(r) in types:
                item = read_medication(r, index, terminology, codes, timing=False)   # only the draft's timing is used
                if item is not None and item.key not in draft_keys:
                    found.append(item)
    return found


def _medication_list(drafts: Drafts, ldn_draft: MedicationItem | None,
                     record_meds: list[MedicationItem]) -> list[Medication]:
    items = [m for m in drafts.medications if m is not ldn_draft] + record_meds
    # Past medicines do not matter to any rule; the relevant ones go first should the list be capped.
    items = [m for m in items if m.medication.status not in ("completed", "stopped")]
    items.sort(key=lambda m: m.product == "unrecognized")
    return [m.medication for m in items[:MAX_MEDICATIONS]]


def _ldn_of_draft(ldn_draft: MedicationItem, in_record: MedicationItem | None) -> LdnOrder:
    """The draft LDN order; the record's current LDN gives its previous dose and the date of the last change."""
    previous = in_record.medication.dose_mg if in_record else None
    changed = fhir.parse_date(in_record.resource.get("authoredOn")) if in_record else None
    return LdnOrder.of_medication(ldn_draft.medication.status, dose_mg=ldn_draft.medication.dose_mg,
                                  timing=ldn_draft.timing, previous_dose_mg=previous,
                                  last_dose_change=changed if previous is not None else None)


def _procedure_list(drafts: Drafts, record: dict[str, list[dict[str, Any]] | None], index: fhir.ResourceIndex,
                    codes: ClinicalCodes, draft_keys: set[Any]) -> list[Procedure]:
    found = list(drafts.procedures)
    for key in (keys.APPOINTMENTS, keys.PROCEDURES, keys.SERVICE_REQUESTS):
        for r in record.get(key) or []:
            item = read_procedure(r, index, codes)
            if item is not None and item.key not in draft_keys and item.key not in {p.key for p in found}:
                found.append(item)
    found.sort(key=lambda p: p.procedure.date)
    return [p.procedure for p in found[:MAX_PROCEDURES]]


def build_context(drafts: Drafts, record: dict[str, list[dict[str, Any]] | None], index: fhir.ResourceIndex,
                  terminology: Terminology, codes: ClinicalCodes) -> Mapped:
    """record: prefetch key -> resources, or None when the data could not be had (unknown, not empty)."""
    draft_keys = {m.key for m in drafts.medications if m.key} | {p.key for p in drafts.procedures if p.key}
    held = [m for m in drafts.medications if m.is_ldn and m.medication.status in LDN_STATUS]
    ldn_draft = next((m for m in held if m.selected), held[0] if held else None)
    record_meds = _record_medications(record, index, terminology, codes, draft_keys)
    ldn_record = next((m for m in record_meds if m.is_ldn and m.current
                       and fhir.resource_type(m.resource) == "MedicationRequest"), None)
    ldn_any_record = ldn_record or next((m for m in record_meds if m.is_ldn and m.current), None)
    medications = _medication_list(drafts, ldn_draft, record_meds) \
        if record.get(keys.MEDICATION_REQUESTS) is not None else None
    procedures_known = record.get(keys.APPOINTMENTS) is not None or bool(drafts.procedures)
    procedures = _procedure_list(drafts, record, index, codes, draft_keys) if procedures_known else None
    egfr_unreadable: list[str] = []
    renal = _renal(record, codes, egfr_unreadable)
    ldn = _ldn_of_draft(ldn_draft, ldn_any_record) if ldn_draft is not None else None
    context = PatientContext(ldn=ldn, medications=medications, procedures=procedures, renal=renal)
    notes = _notes(record, renal, procedures_known, codes)
    return Mapped(context, drafts, ldn_draft, ldn_record, notes, ldn_any_record is not None,
                  _unreadable(ldn_draft, ldn_any_record, egfr_unreadable))


def _unreadable(ldn_draft: MedicationItem | None, ldn_record: MedicationItem | None,
                egfr: list[str]) -> tuple[str, ...]:
    """Lines for the "not fully checked" card: values that were given but could not be read (treated as absent)."""
    out = []
    for item, what in ((ldn_draft, "The LDN order being signed"), (ldn_record, "The current LDN order")):
        fields_ = unreadable_dose_fields(item.resource) if item is not None else []
        if fields_:
            out.append(f"{what} has numbers that are not usable ({', '.join(fields_[:5])}): its dose was "
                       "treated as unknown.")
    if egfr:
        out.append(f"eGFR results with a value that is not a usable number were ignored ({', '.join(egfr[:5])}).")
    return tuple(out)
