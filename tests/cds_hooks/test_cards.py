"""Hook calls end to end: FHIR in, cards out (every 200 answer is checked by the checklist validator in post_hook).

The evaluation date is fixed at 2026-03-01 (FIXED_TODAY) through the evaluation_date dependency."""
from __future__ import annotations

import datetime as dt

import pytest

from service.knowledge.sources import fold_whitespace
from service.web.urls import quote_anchor

from .support import (appointment, bundle, cards_by_rule, egfr, hook_request, ldn_draft, make_client,
                                medication_request, oxycodone, post_hook, record)

OPIOID, PERIOP, RENAL = "ldn-opioid-coadministration", "ldn-perioperative-hold", "ldn-renal-impairment"
INFO = {"extension": {"ldn-cds.include-info-cards": True}}


@pytest.fixture(scope="module")
def client(evaluator):
    return make_client(evaluator)


def _order_sign(client, drafts, *, ahead_days: int | None = 1, meds=(), extra_record=None, **extra):
    appointments = [appointment("apt-knee", f"{dt.date(2026, 3, 1) + dt.timedelta(days=ahead_days)}T08:00:00-05:00")
                    ] if ahead_days is not None else []
    values = dict(medicationRequests=bundle(*meds), medicationStatements=bundle(), egfr=bundle(egfr(95)),
                  conditions=bundle(), appointments=bundle(*appointments))
    prefetch = record(**{**values, **(extra_record or {})})
    return post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=drafts, prefetch=prefetch, **extra))


def test_end_to_end_ldn_order_with_oxycodone_and_knee_replacement(client, kb):
    """Done means: a draft naltrexone 4.5 mg order, an active oxycodone MedicationRequest and a knee replacement
    appointment in 2 days -> a critical card for each, with sources and suggestions."""
    response = _order_sign(client, [ldn_draft()], ahead_days=2, meds=[oxycodone()])
    assert response.status_code == 200
    cards = cards_by_rule(response)
    assert set(cards) == {OPIOID, PERIOP}                        # info-level advice not asked for: no cards
    assert [c["indicator"] for c in response.json()["cards"]] == ["critical", "critical"]
    for rule_id, card in cards.items():
        assert card["source"]["url"] == f"http://testserver/rules/{rule_id}"            # the rule's page
        assert card["links"] == [{"label": "The rule and its sources", "url": f"http://testserver/rules/{rule_id}",
                                  "type": "absolute"}]
        assert card["source"]["label"] and card["overrideReasons"]
        for citation in kb.rules[rule_id].citations:             # every quoted passage, linked to its source
            assert f"“{citation.quote}”" in card["detail"]
            anchor = quote_anchor(citation.quote)                # the passage, highlighted on the source page
            assert f"(http://testserver/sources/{citation.source_id}#{anchor})" in card["detail"]
            assert fold_whitespace(citation.quote) in fold_whitespace(kb.sources[citation.source_id].text)
        assert card["selectionBehavior"] == "at-most-one"
    (remove,) = cards[OPIOID]["suggestions"]
    assert remove["actions"] == [{"type": "delete", "resourceId": "MedicationRequest/ldn-draft-1",
                                  "description": "Remove the draft LDN order: Naltrexone 4.5 mg capsule (compounded)"}]
    assert "oxycodone" in cards[OPIOID]["detail"].lower()
    (hold,) = cards[PERIOP]["suggestions"]
    (action,) = hold["actions"]
    held = action["resource"]
    assert action["type"] == "update" and held["id"] == "ldn-draft-1" and held["status"] == "on-hold"
    assert held["statusReason"]["coding"][0]["code"] == "surg"
    assert "Hold LDN from 2026-02-28 (at the latest from 2026-03-01)" in held["note"][0]["text"]
    assert "2026-03-03" in cards[PERIOP]["summary"] and "Total knee replacement" in cards[PERIOP]["detail"]


def test_procedure_in_three_days_is_a_warning_and_the_hold_starts_today(client):
    # Critical from the last day the hold can start (procedure minus 2 days); at 3 days the recommended hold
    # starts today (hold-from 2026-03-01): a warning, and the order goes on hold now.
    cards = cards_by_rule(_order_sign(client, [ldn_draft()], ahead_days=3, meds=[oxycodone()]))
    assert cards[OPIOID]["indicator"] == "critical" and cards[PERIOP]["indicator"] == "warning"
    assert cards[PERIOP]["suggestions"][0]["actions"][0]["resource"]["status"] == "on-hold"


def test_hold_starting_later_ends_the_doses_the_day_before(client):
    cards = cards_by_rule(_order_sign(client, [ldn_draft()], ahead_days=10))
    assert cards[PERIOP]["indicator"] == "warning" and "2026-03-08" in cards[PERIOP]["summary"]
    (suggestion,) = cards[PERIOP]["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    assert resource["status"] == "draft"
    assert resource["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] == {"end": "2026-03-07"}
    assert "Hold LDN from 2026-03-08" in suggestion["label"]


def test_surgery_found_through_the_appointments_service_request(client):
    surgery = {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order",
               "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "387713003"}]}],
               "code": {"text": "Arthroplasty, knee"}, "subject": {"reference": "Patient/pat-1"}}
    visit = appointment("apt-1", "2026-03-05T08:00:00Z", text="Orthopaedics",
                        basedOn=[{"reference": "ServiceRequest/sr-1"}])
    response = _order_sign(client, [ldn_draft()], ahead_days=None,
                           extra_record={"appointments": bundle(visit), "serviceRequests": bundle(surgery)})
    assert cards_by_rule(response)[PERIOP]["indicator"] == "warning"


@pytest.mark.parametrize("text,extra", [
    ("Knee replacement follow-up", {}),                                      # a visit about surgery
    ("Orthopaedics", {"appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276",
                                                      "code": "FOLLOWUP"}]}}),
    ("Total knee replacement", {"status": "cancelled"}),
    ("Hormone replacement therapy review", {}),
])
def test_not_a_surgery(client, text, extra):
    visit = appointment("apt-1", "2026-03-05T08:00:00Z", text=text, **extra)
    response = _order_sign(client, [ldn_draft()], ahead_days=None, extra_record={"appointments": bundle(visit)})
    assert PERIOP not in cards_by_rule(response)


def test_emergency_surgery_is_not_elective(client):
    urgent = appointment("apt-1", "2026-03-02T08:00:00Z", appointmentType={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "EMERGENCY"}]})
    response = _order_sign(client, [ldn_draft()], ahead_days=None, extra_record={"appointments": bundle(urgent)})
    assert PERIOP not in cards_by_rule(response)


def test_opioid_ordered_for_a_patient_on_ldn(client):
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    body = hook_request("order-sign", drafts=[oxycodone("oxy-draft", status="draft")],
                        prefetch=record(medicationRequests=bundle(on_ldn), egfr=bundle(egfr(30))))
    response = post_hook(client, "ldn-order-sign", body)
    cards = cards_by_rule(response)
    assert set(cards) == {OPIOID}                # the renal problem is the LDN's, not this order's: not shown here
    (remove,) = cards[OPIOID]["suggestions"]
    assert remove["actions"][0] == {"type": "delete", "resourceId": "MedicationRequest/oxy-draft",
                                    "description": remove["actions"][0]["description"]}


def test_opioid_for_a_patient_not_on_ldn_is_silent(client):
    body = hook_request("order-sign", drafts=[oxycodone("oxy-draft", status="draft")],
                        prefetch=record(medicationRequests=bundle()))
    assert post_hook(client, "ldn-order-sign", body).json() == {"cards": []}


def test_order_select_looks_at_the_new_selection(client):
    drafts = [ldn_draft(), oxycodone("oxy-draft", status="draft")]
    prefetch = record(medicationRequests=bundle())
    now_oxy = hook_request("order-select", drafts=drafts, prefetch=prefetch)
    now_oxy["context"]["selections"] = ["MedicationRequest/oxy-draft"]
    cards = cards_by_rule(post_hook(client, "ldn-order-select", now_oxy))
    assert set(cards) == {OPIOID}
    assert [s["label"] for s in cards[OPIOID]["suggestions"]] == ["Remove the draft opioid order"]
    metformin = hook_request("order-select", drafts=[ldn_draft(), medication_request("m", text="acetaminophen 500 mg",
                                                                                      status="draft")],
                             prefetch=prefetch)
    metformin["context"]["selections"] = ["MedicationRequest/m"]
    assert post_hook(client, "ldn-order-select", metformin).json() == {"cards": []}


def test_info_cards_only_when_asked_for(client):
    plain = _order_sign(client, [ldn_draft()], ahead_days=None)
    assert plain.json()["cards"] == []
    asked = cards_by_rule(_order_sign(client, [ldn_draft()], ahead_days=None, **INFO))
    assert {"ldn-titration-start", "ldn-side-effect-counselling"} <= set(asked)
    assert all(c["indicator"] == "info" for c in asked.values())
    (change,) = asked["ldn-titration-start"]["suggestions"]
    dose = change["actions"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose == {"value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert "overrideReasons" not in asked["ldn-titration-start"]
    # A new start has no previous dose nor last dose change to miss: the titration rules are not "not checked".
    assert "not-evaluated" not in asked


def test_dose_above_range_suggests_the_starting_dose(client):
    cards = cards_by_rule(_order_sign(client, [ldn_draft(dose_mg=9)], ahead_days=None))
    assert cards["ldn-dose-above-range"]["indicator"] == "warning"
    (change,) = cards["ldn-dose-above-range"]["suggestions"]
    assert change["label"] == "Change the LDN dose to 1.5 mg daily"


@pytest.mark.parametrize("renal", [
    {"egfr": bundle(egfr(42))},
    {"conditions": bundle({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]},
                           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.4"}]}})},
    {"conditions": bundle({"resourceType": "Condition",
                           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z99.2"}]}})},
    {"conditions": bundle({"resourceType": "Condition",
                           "code": {"coding": [{"system": "http://snomed.info/sct", "code": "700379002"}]}})},
])
def test_renal_impairment(client, renal):
    prefetch = record(medicationRequests=bundle(), appointments=bundle(), **renal)
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=[ldn_draft()],
                                                                          prefetch=prefetch)))
    assert cards[RENAL]["indicator"] == "warning" and "suggestions" not in cards[RENAL]


def test_resolved_ckd_and_old_egfr_do_not_count(client):
    resolved = {"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "resolved"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.4"}]}}
    prefetch = record(medicationRequests=bundle(), appointments=bundle(), conditions=bundle(resolved),
                      egfr=bundle(egfr(40, "2024-01-01"), egfr(80, "2026-02-20")))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=[ldn_draft()],
                                                                          prefetch=prefetch)))
    assert RENAL not in cards and "not-evaluated" not in cards          # the latest eGFR (80) decides


def test_missing_data_is_an_info_card_not_silence(client):
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch={"medicationRequests": bundle()})
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    gap = cards["not-evaluated"]
    assert gap["indicator"] == "info"
    assert "kidney function" in gap["summary"] and "procedure list" in gap["summary"]
    assert "patient-reported medications" in gap["summary"]
    assert "LDN with impaired kidney function not checked" in gap["detail"]
    assert "Hold LDN before elective surgery not checked" in gap["detail"]


def test_patient_view_standing_problems(client):
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    prefetch = record(medicationRequests=bundle(on_ldn, oxycodone()), egfr=bundle(egfr(42)), appointments=bundle())
    response = post_hook(client, "ldn-patient-view", hook_request("patient-view", prefetch=prefetch))
    cards = cards_by_rule(response)
    assert cards[OPIOID]["indicator"] == "critical" and cards[RENAL]["indicator"] == "warning"
    not_on_ldn = record(medicationRequests=bundle(oxycodone()))
    assert post_hook(client, "ldn-patient-view", hook_request("patient-view", prefetch=not_on_ldn)
                     ).json() == {"cards": []}


def test_appointment_book_gives_the_hold_dates(client):
    on_ldn = medication_request("ldn-active", text="LDN 4.5 mg capsule", dose_mg=4.5, when="HS")
    booking = appointment("apt-new", "2026-03-06T09:00:00-06:00", text="Laparoscopic cholecystectomy",
                          status="proposed")
    body = hook_request("appointment-book", appointments=[booking],
                        prefetch={"medicationRequests": bundle(on_ldn), "medicationStatements": None})
    cards = cards_by_rule(post_hook(client, "ldn-appointment-book", body))
    assert set(cards) == {PERIOP}
    assert cards[PERIOP]["summary"] == "Hold LDN from 2026-03-03 before elective procedure on 2026-03-06."
    update = cards[PERIOP]["suggestions"][0]["actions"][0]
    assert update["resource"]["id"] == "ldn-active" and update["resource"]["status"] == "active"
    assert update["resource"]["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] == "2026-03-02"


@pytest.mark.parametrize("case", ["not on LDN", "not surgery", "in the past"])
def test_appointment_book_silent(client, case):
    on_ldn = medication_request("ldn-active", text="LDN 4.5 mg capsule", dose_mg=4.5)
    booking = appointment("apt-new", "2026-02-20T09:00:00Z" if case == "in the past" else "2026-03-06T09:00:00Z",
                          text="Annual check-up" if case == "not surgery" else "Hip replacement")
    meds = bundle() if case == "not on LDN" else bundle(on_ldn)
    body = hook_request("appointment-book", appointments=[booking], prefetch={"medicationRequests": meds})
    assert post_hook(client, "ldn-appointment-book", body).json() == {"cards": []}


def test_names_cannot_inject_markdown(client):
    evil = medication_request("oxy-x", text="Oxycodone 5 mg [click](https://evil.example) **now**")
    cards = cards_by_rule(_order_sign(client, [ldn_draft()], ahead_days=None, meds=[evil]))
    detail = cards[OPIOID]["detail"]
    assert "[click](https://evil.example)" not in detail and r"\[click\]\(https://evil.example\)" in detail


def test_card_uuids_are_stable_per_hook_instance(client):
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(medicationRequests=bundle(oxycodone())))
    first = [c["uuid"] for c in post_hook(client, "ldn-order-sign", body).json()["cards"]]
    again = [c["uuid"] for c in post_hook(client, "ldn-order-sign", body).json()["cards"]]
    body["hookInstance"] = "another-instance"
    other = [c["uuid"] for c in post_hook(client, "ldn-order-sign", body).json()["cards"]]
    assert first == again and not set(first) & set(other)


def test_sandbox_quirks_and_valid_r4_updates(client):
    quirky = ldn_draft()
    quirky["category"] = {"coding": [{"code": "outpatient"}]}      # an object where R4 has an array
    del quirky["intent"]
    body = hook_request("order-sign", drafts=[quirky], prefetch=record(medicationRequests=bundle(oxycodone()),
                                                                       appointments=bundle(appointment(
                                                                           "a", "2026-03-02T08:00:00Z"))))
    del body["context"]["draftOrders"]["type"]                      # a Bundle without type
    response = post_hook(client, "ldn-order-sign", body)            # post_hook validates the update as R4
    held = cards_by_rule(response)[PERIOP]["suggestions"][0]["actions"][0]["resource"]
    assert held["category"] == [{"coding": [{"code": "outpatient"}]}] and held["intent"] == "order"


def test_medication_reference_resolved_from_the_request(client):
    draft = {"resourceType": "MedicationRequest", "id": "ldn-ref", "status": "draft", "intent": "order",
             "medicationReference": {"reference": "Medication/med-ldn"}, "subject": {"reference": "Patient/pat-1"}}
    medication = {"resourceType": "Medication", "id": "med-ldn",
                  "code": {"text": "Naltrexone 3 mg capsule, compounded"}}
    contained_oxy = {"resourceType": "MedicationRequest", "id": "oxy-c", "status": "active", "intent": "order",
                     "contained": [{"resourceType": "Medication", "id": "m1", "code": {"coding": [
                         {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049621"}]}}],
                     "medicationReference": {"reference": "#m1"}, "subject": {"reference": "Patient/pat-1"}}
    body = hook_request("order-sign", drafts=[draft, medication],
                        prefetch=record(medicationRequests=bundle(contained_oxy)))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert cards[OPIOID]["indicator"] == "critical"


def test_an_opioid_or_ldn_named_only_by_the_ingredients_of_a_contained_medication(client):
    def compounded(id_, text, rxnorm, name, status="draft"):
        medication = {"resourceType": "Medication", "id": f"m-{id_}", "code": {"text": text},
                      "ingredient": [{"itemCodeableConcept": {"coding": [
                          {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm,
                           "display": name}]}}]}
        return {"resourceType": "MedicationRequest", "id": id_, "status": status, "intent": "order",
                "contained": [medication], "medicationReference": {"reference": f"#m-{id_}"},
                "subject": {"reference": "Patient/pat-1"}}
    on_morphine = record(medicationRequests=bundle(compounded("mor", "Oral solution", "7052", "morphine", "active")),
                         medicationStatements=bundle())
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=[ldn_draft()],
                                                                           prefetch=on_morphine)))
    assert cards[OPIOID]["indicator"] == "critical" and "morphine" in cards[OPIOID]["detail"]
    on_oxycodone = record(medicationRequests=bundle(oxycodone()), medicationStatements=bundle())
    ldn = compounded("ldn", "Compounded capsule", "7243", "naltrexone")
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", hook_request("order-sign", drafts=[ldn],
                                                                           prefetch=on_oxycodone)))
    assert cards[OPIOID]["indicator"] == "critical"


def test_re_sign_and_renewal_are_not_new_starts(client):
    active_draft = ldn_draft(status="active")                      # re-sign of a revised order
    assert "ldn-side-effect-counselling" not in cards_by_rule(_order_sign(client, [active_draft], ahead_days=None,
                                                                          **INFO))
    current = medication_request("ldn-old", text="Naltrexone 3 mg capsule (compounded)", dose_mg=3)
    renewal = cards_by_rule(_order_sign(client, [ldn_draft()], ahead_days=None, meds=[current], **INFO))
    assert "ldn-side-effect-counselling" not in renewal and "ldn-titration-start" not in renewal


def test_surgery_ordered_for_a_patient_on_ldn(client):
    surgery = {"resourceType": "ServiceRequest", "id": "sr-draft", "status": "draft", "intent": "order",
               "code": {"text": "Laparoscopic appendectomy"}, "occurrenceDateTime": "2026-03-09",
               "subject": {"reference": "Patient/pat-1"}}
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    body = hook_request("order-sign", drafts=[surgery], prefetch={"medicationRequests": bundle(on_ldn)})
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert set(cards) == {PERIOP} and "2026-03-06" in cards[PERIOP]["summary"]
    update = cards[PERIOP]["suggestions"][0]["actions"][0]["resource"]
    assert update["id"] == "ldn-active" and update["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] == {
        "end": "2026-03-05"}


def test_another_naltrexone_ordered_for_a_patient_on_ldn(client):
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    vivitrol = medication_request("viv", text="Vivitrol 380 mg injection", status="draft")
    body = hook_request("order-sign", drafts=[vivitrol], prefetch={"medicationRequests": bundle(on_ldn)})
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert set(cards) == {"ldn-duplicate-naltrexone"}
    assert cards["ldn-duplicate-naltrexone"]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/viv"


def test_an_unidentified_draft_for_a_patient_on_ldn_is_listed_as_not_checked(client):
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    unknown = medication_request("zz", text="Zorvexa 10 mg tablet", status="draft")
    body = hook_request("order-sign", drafts=[unknown], prefetch=record(medicationRequests=bundle(on_ldn)))
    (card,) = post_hook(client, "ldn-order-sign", body).json()["cards"]
    assert card["indicator"] == "info" and "not identified" in card["summary"]
    assert "Zorvexa 10 mg tablet" in card["detail"]
    not_on_ldn = hook_request("order-sign", drafts=[unknown], prefetch=record(medicationRequests=bundle()))
    assert post_hook(client, "ldn-order-sign", not_on_ldn).json() == {"cards": []}


def test_unidentified_record_entries_are_listed_on_the_ldn_order(client):
    odd = medication_request("odd", text="Herbal tincture X-7 drops")
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(
        medicationRequests=bundle(odd), egfr=bundle(egfr(90)), conditions=bundle(), appointments=bundle(),
        medicationStatements=bundle()))
    cards = post_hook(client, "ldn-order-sign", body).json()["cards"]
    gap = next(c for c in cards if c["summary"].startswith("Not fully checked"))
    assert "Herbal tincture X-7 drops" in gap["detail"] and "1 medication(s) not identified" in gap["summary"]


# --- issue 11: the standard-naltrexone blockade and urgent procedures -------------------------------------------

BLOCKADE, URGENT = "naltrexone-opioid-blockade", "ldn-nonelective-procedure"


def test_opioid_draft_for_a_patient_on_vivitrol(client):
    vivitrol = medication_request("viv", text="Vivitrol 380 mg injection")
    body = hook_request("order-sign", drafts=[oxycodone("oxy-draft", status="draft")],
                        prefetch=record(medicationRequests=bundle(vivitrol)))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert set(cards) == {BLOCKADE} and cards[BLOCKADE]["indicator"] == "critical"
    (remove,) = cards[BLOCKADE]["suggestions"]
    assert [a["resourceId"] for a in remove["actions"]] == ["MedicationRequest/oxy-draft"]


def test_vivitrol_draft_for_a_patient_on_an_opioid(client):
    body = hook_request("order-sign", drafts=[medication_request("viv", text="Vivitrol 380 mg injection",
                                                                 status="draft")],
                        prefetch=record(medicationRequests=bundle(oxycodone("oxy-1"))))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert set(cards) == {BLOCKADE}
    (remove,) = cards[BLOCKADE]["suggestions"]
    assert [a["resourceId"] for a in remove["actions"]] == ["MedicationRequest/viv"]


def test_emergency_surgery_tells_anaesthesia(client):
    urgent = appointment("apt-1", "2026-03-02T08:00:00Z", appointmentType={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "EMERGENCY"}]})
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    body = hook_request("appointment-book", appointments=[urgent],
                        prefetch={"medicationRequests": bundle(on_ldn), "medicationStatements": None})
    cards = cards_by_rule(post_hook(client, "ldn-appointment-book", body))
    assert set(cards) == {URGENT} and cards[URGENT]["indicator"] == "warning"


@pytest.mark.parametrize("draft_naltrexone", [True, False])
def test_a_naltrexone_of_unknown_strength_with_an_opioid_gets_a_critical_opioid_card(client, draft_naltrexone):
    naltrexone = medication_request("ntx", text="Naltrexone", status="draft" if draft_naltrexone else "active")
    opioid = oxycodone("oxy", status="active" if draft_naltrexone else "draft")
    draft, current = (naltrexone, opioid) if draft_naltrexone else (opioid, naltrexone)
    body = hook_request("order-sign", drafts=[draft], prefetch=record(medicationRequests=bundle(current)))
    cards = cards_by_rule(post_hook(client, "ldn-order-sign", body))
    assert {OPIOID, BLOCKADE} & set(cards)
    assert all(cards[r]["indicator"] == "critical" for r in {OPIOID, BLOCKADE} & set(cards))
