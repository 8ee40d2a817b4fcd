"""The FHIR-to-facts mapping on its own (pure functions): doses, times, statuses, surgery, kidney function."""
from __future__ import annotations

import datetime as dt

import pytest

from service.cds_hooks import fhir
from service.cds_hooks.fhir_mapping import (build_context, daily_dose_mg, ingredient_strength_mg, is_surgical,
                                            read_drafts, read_medication, read_procedure)

from .support import RXNORM, appointment, bundle, egfr, ldn_draft, medication_request, oxycodone

TODAY = dt.date(2026, 3, 1)


def _dosage(value, unit, **repeat):
    return {"dosageInstruction": [{"timing": {"repeat": repeat} if repeat else {},
                                   "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}]}


@pytest.mark.parametrize("resource,strength,expected", [
    (_dosage(4.5, "mg"), None, 4.5),
    (_dosage(4500, "mcg"), None, 4.5),
    (_dosage(1.5, "mg", frequency=2, period=1, periodUnit="d"), None, 3.0),
    (_dosage(1, "capsule"), 4.5, 4.5),                               # units times the product strength
    (_dosage(1, "capsule"), None, None),                             # unknowable: not evaluated, never guessed
    (_dosage(1, "mL"), 4.5, None),
    ({"dosageInstruction": [{"doseQuantity": {"value": 3, "unit": "mg"}}]}, None, 3.0),       # STU3 / DSTU2
    (_dosage(0, "mg"), None, None),
    (_dosage(10 ** 9, "mg"), None, None),                            # beyond any naltrexone dose: an input error
    ({"dosageInstruction": "garbage"}, None, None),
])
def test_daily_dose(resource, strength, expected):
    assert daily_dose_mg(resource, strength) == expected


def test_reading_medications(kb):
    index, codes = fhir.ResourceIndex(), kb.clinical_codes
    ldn = read_medication(ldn_draft(), index, kb.terminology, codes, draft=True, selected=True)
    assert ldn.is_ldn and ldn.medication.status == "proposed" and ldn.medication.dose_mg == 4.5
    assert ldn.timing == "bedtime"
    morning = read_medication(medication_request("x", text="LDN 3 mg capsule", dose_mg=3, when="MORN"), index,
                              kb.terminology, codes)
    assert morning.timing == "morning" and morning.medication.status == "active"
    free_text = medication_request("y", text="LDN 3 mg capsule")
    free_text["dosageInstruction"] = [{"text": "take one daily"}]
    assert read_medication(free_text, index, kb.terminology, codes).timing is None    # "daily" is not a time of day
    assert read_medication(oxycodone(status="entered-in-error"), index, kb.terminology, codes) is None
    statement = {"resourceType": "MedicationStatement", "status": "intended",
                 "medicationCodeableConcept": {"text": "Percocet 5/325"}}
    assert read_medication(statement, index, kb.terminology, codes).medication.status == "proposed"
    assert read_medication({**statement, "status": "not-taken"}, index, kb.terminology, codes) is None
    contrave = medication_request("z", text="bupropion 90 mg / naltrexone 8 mg extended release tablet")
    assert read_medication(contrave, index, kb.terminology, codes).is_other_naltrexone


def _compounded(ingredients, code=None, dose=None):
    """A MedicationRequest for a contained Medication (how EHRs send compounded products)."""
    medication = {"resourceType": "Medication", "id": "m", "code": code or {"text": "Compounded capsule"},
                  "ingredient": ingredients}
    r = {"resourceType": "MedicationRequest", "id": "c", "status": "draft", "intent": "order",
         "contained": [medication], "medicationReference": {"reference": "#m"}}
    if dose:
        r["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": {"value": dose[0], "unit": dose[1]}}]}]
    return r


def _ingredient(code, display, strength=None):
    item = {"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}]}}
    return {**item, "strength": strength} if strength else item


def _per(value, unit, per=1, per_unit="capsule"):
    return {"numerator": {"value": value, "unit": unit}, "denominator": {"value": per, "unit": per_unit}}


def test_a_product_named_only_by_its_ingredients_is_read_from_them(kb):
    index, codes = fhir.ResourceIndex(), kb.clinical_codes
    ldn = read_medication(_compounded([_ingredient("7243", "naltrexone", _per(4.5, "mg"))], dose=(1, "capsule")),
                          index, kb.terminology, codes, draft=True)
    assert ldn.is_ldn and ldn.medication.dose_mg == 4.5          # 1 capsule of 4.5 mg
    assert ldn.medication.name == "Compounded capsule (naltrexone)"
    assert (RXNORM, "7243") in {(c.system, c.code) for c in ldn.medication.codes}
    morphine = read_medication(_compounded([_ingredient("7052", "morphine")], code={"text": "Oral solution"}),
                               index, kb.terminology, codes)
    assert morphine.is_opioid
    # Every code is read: an opioid ingredient in a product coded as something else still makes it an opioid.
    mixed = read_medication(_compounded([_ingredient("7052", "morphine")], code={"coding": [
        {"system": RXNORM, "code": "7243", "display": "naltrexone"}]}), index, kb.terminology, codes)
    assert mixed.is_opioid and mixed.medication.name == "naltrexone (morphine)"


_MORPHINE = {"coding": [{"system": RXNORM, "code": "7052"}]}


@pytest.mark.parametrize("ingredient,contained", [
    ({"itemReference": {"reference": "#s"}}, [{"resourceType": "Substance", "id": "s", "code": _MORPHINE}]),  # R4
    ({"itemReference": {"reference": "Substance/x", "display": "Morphine sulfate"}}, []),   # not resolvable
    ({"item": {"concept": _MORPHINE}}, []),                                                  # R5 CodeableReference
    ({"item": {"reference": {"reference": "#s"}}}, [{"resourceType": "Substance", "id": "s", "code": _MORPHINE}]),
])
def test_an_ingredient_is_read_in_every_shape_fhir_gives_it(kb, ingredient, contained):
    order = _compounded([ingredient], code={"text": "Oral solution"})
    order["contained"] += contained                                   # beside the Medication, in the order
    assert read_medication(order, fhir.ResourceIndex(), kb.terminology, kb.clinical_codes).is_opioid


def test_a_dstu2_medications_product_ingredients_are_read(kb):
    order = _compounded([], code={"text": "Oral solution"})
    order["contained"][0]["product"] = {"ingredient": [{"item": {"reference": "Substance/1",
                                                                  "display": "morphine"}}]}
    assert read_medication(order, fhir.ResourceIndex(), kb.terminology, kb.clinical_codes).is_opioid


@pytest.mark.parametrize("ingredients,expected", [
    ([_ingredient("7243", "naltrexone", _per(4.5, "mg"))], 4.5),
    ([_ingredient("7243", "naltrexone", _per(1500, "mcg", per_unit="tablet"))], 1.5),
    ([_ingredient("7243", "naltrexone", _per(1, "mg", per_unit="mL"))], None),     # a solution: not per capsule
    ([_ingredient("7243", "naltrexone", _per(9, "mg", per=2))], None),             # per 2 capsules: not read
    ([_ingredient("7243", "naltrexone", _per(4.5, "mg")), _ingredient("1", "x", _per(1, "mg"))], None),
    ([_ingredient("7243", "naltrexone", _per(4.5, "mg")), {**_ingredient("1", "x", _per(9, "mg")), "isActive": False}],
     4.5),
    ([_ingredient("7243", "naltrexone", _per(float("nan"), "mg"))], None),
    ([], None),
])
def test_ingredient_strength(ingredients, expected):
    assert ingredient_strength_mg(ingredients) == expected


@pytest.mark.parametrize("resource,surgical", [
    (appointment("a", "2026-03-05", text="Total knee replacement"), True),
    (appointment("a", "2026-03-05", text="Laparoscopic cholecystectomy"), True),
    (appointment("a", "2026-03-05", text="Phlebotomy"), False),
    (appointment("a", "2026-03-05", text="Pre-op assessment for hip replacement"), False),
    ({"resourceType": "ServiceRequest", "status": "active", "occurrenceDateTime": "2026-03-05",
      "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "387713003"}]}], "code": {"text": "x"}},
     True),
    ({"resourceType": "Procedure", "status": "preparation", "performedDateTime": "2026-03-05",
      "code": {"coding": [{"display": "Appendectomy"}]}}, True),
])
def test_surgery(kb, resource, surgical):
    assert is_surgical(resource, fhir.ResourceIndex(), kb.clinical_codes) is surgical


def test_procedures_need_a_date_and_an_open_status(kb):
    index, codes = fhir.ResourceIndex(), kb.clinical_codes
    assert read_procedure(appointment("a", "2026-03-05T08:00:00Z"), index, codes).procedure.date == dt.date(2026, 3, 5)
    no_date = appointment("a", "2026-03-05")
    del no_date["start"]
    no_date["requestedPeriod"] = [{"start": "2026-03-07T08:00:00Z"}]
    assert read_procedure(no_date, index, codes).procedure.date == dt.date(2026, 3, 7)
    assert read_procedure(appointment("a", "2026-03"), index, codes) is None                  # a partial date
    assert read_procedure(appointment("a", "2026-03-05", status="fulfilled"), index, codes) is None
    urgent = {"resourceType": "ServiceRequest", "status": "active", "priority": "urgent",
              "occurrenceDateTime": "2026-03-05", "code": {"text": "Open reduction internal fixation"}}
    assert read_procedure(urgent, index, codes).procedure.elective is False


def test_a_procedure_is_named_by_its_most_specific_text(kb):
    index, codes = fhir.ResourceIndex(), kb.clinical_codes
    category = [{"coding": [{"system": "http://snomed.info/sct", "code": "387713003",
                             "display": "Surgical procedure"}]}]
    booked = appointment("a", "2026-03-05", text="Orthopaedic surgery", serviceCategory=category,
                         description="Total knee replacement")
    assert read_procedure(booked, index, codes).procedure.name == "Total knee replacement"
    ordered = {"resourceType": "ServiceRequest", "status": "active", "occurrenceDateTime": "2026-03-05",
               "category": category, "code": {"text": "Laparoscopic cholecystectomy"}}
    assert read_procedure(ordered, index, codes).procedure.name == "Laparoscopic cholecystectomy"
    assert read_procedure({**ordered, "code": {}}, index, codes).procedure.name == "Surgical procedure"


def test_build_context(kb):
    index = fhir.ResourceIndex()
    drafts = read_drafts("order-sign", {"draftOrders": bundle(ldn_draft())}, index, kb.terminology, kb.clinical_codes,
                         TODAY)
    assert drafts.scope == {"ldn"}
    current = medication_request("ldn-old", text="Naltrexone 3 mg capsule (compounded)", dose_mg=3,
                                 authored="2026-02-01")
    ckd = {"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                             "code": "N1832"}]}}
    mapped = build_context(drafts, {"medicationRequests": [current, oxycodone()], "medicationStatements": None,
                                    "egfr": [egfr(55, "2026-01-01"), egfr(48, "2026-02-15")], "conditions": [ckd],
                                    "appointments": None}, index, kb.terminology, kb.clinical_codes)
    ctx = mapped.context
    assert ctx.ldn.status == "proposed" and ctx.ldn.dose_mg == 4.5 and ctx.ldn.timing == "bedtime"
    assert ctx.ldn.previous_dose_mg == 3 and ctx.ldn.last_dose_change == dt.date(2026, 2, 1)   # a renewal
    assert ctx.renal.egfr == 48 and ctx.renal.ckd_stage == "G3b" and ctx.renal.dialysis is None
    assert ctx.procedures is None and "procedures" in mapped.notes                 # unknown, not "none"
    assert "medication_statements" in mapped.notes
    assert [m.status for m in ctx.medications] == ["active", "active"]
    assert mapped.ldn_record.resource["id"] == "ldn-old" and mapped.ldn_in_record


def test_empty_record_is_known_and_empty(kb):
    drafts = read_drafts("patient-view", {}, fhir.ResourceIndex(), kb.terminology, kb.clinical_codes, TODAY)
    mapped = build_context(drafts, {"medicationRequests": [], "appointments": [], "egfr": [], "conditions": []},
                           fhir.ResourceIndex(), kb.terminology, kb.clinical_codes)
    assert mapped.context.medications == [] and mapped.context.procedures == []
    assert mapped.context.renal is None                                            # no result is not "normal"


def test_readers_never_raise_on_garbage():
    for value in (None, 1, "x", [], {}, {"entry": "x"}, {"entry": [None, 1, {"resource": []}]}):
        assert fhir.resources(value) == [] and fhir.codes(value) == [] and fhir.concept_texts(value) == []
        assert fhir.next_link(value) is None
    assert fhir.reference_key("https://ehr/fhir/Medication/1/_history/2") == ("Medication", "1")
    assert fhir.reference_key("#contained") is None and fhir.parse_date("2026-02-30") is None


def test_the_index_resolves_what_was_added_first_whenever_it_is_looked_up():
    index = fhir.ResourceIndex()
    first, second = {"resourceType": "Medication", "id": "m", "n": 1}, {"resourceType": "Medication", "id": "m", "n": 2}
    index.add(first, "urn:uuid:1")
    index.add_bundle({"entry": [{"fullUrl": "urn:uuid:1", "resource": second}, {"resource": []}, "x"]})
    assert index.resolve("Medication/m") is first and index.resolve({"reference": "urn:uuid:1"}) is first
    third = {"resourceType": "Medication", "id": "t"}
    index.add_any({"resourceType": "Bundle", "entry": [{"resource": third}]})     # added after a lookup
    assert index.resolve("https://ehr/fhir/Medication/t") is third and list(index) == [first, third]
    assert index.resolve("#c", container={"contained": [{"id": "c"}]}) == {"id": "c"}


def test_sendable_copy_is_a_deep_copy_of_what_can_be_sent_back():
    value = {"a": [{"b": 1.5, "c": None}, "d"], "e": {"f": True}, "g": 2 ** 62}
    copied = fhir.sendable_copy(value)
    assert copied == value and copied["a"] is not value["a"] and copied["a"][0] is not value["a"][0]
    assert copied["e"] is not value["e"]
    for bad in (float("nan"), float("inf"), 10 ** 310, "\ud800", {"\udfff": 1}):
        with pytest.raises(fhir.NotSendable):
            fhir.sendable_copy({"a": [{"b": bad}]})
