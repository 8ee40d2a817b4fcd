"""POST /v1/order-checks: every verdict path, every DUR / ActCode mapping, the unit forms pharmacies send, the
reverse check (an opioid ordered for a patient on LDN), duplicates, unrecognised items, and FHIR R4 output."""
from __future__ import annotations

import copy
import logging
import shutil

import pytest
import yaml
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.operationoutcome import OperationOutcome

from service.app import create_app
from service.order_checks.models import OrderCheckResponse
from service.web.auth import hash_key
from service.knowledge.base import load_knowledge
from service.knowledge.errors import KnowledgeError
from service.knowledge.terminology import load_terminology
from service.core.scope import concerns
from service.order_checks.mapping import OrderCheckRequest, plan
from service.order_checks.coding import resolve
from service.settings import Settings

from ..conftest import ROOT

AS_OF = "2026-03-01"
LDN = {"name": "Naltrexone HCl 4.5 mg capsule, compounded", "dose_mg": "4.5 mg", "frequency": "qhs", "kind": "refill"}
OXY = {"name": "Oxycodone HCl 5 mg tablet", "status": "active"}
LDN_ON_PROFILE = {"name": "LDN 4.5 mg capsule (compounded)", "status": "active"}
FULL_PROFILE = {"medications": [], "procedures": [], "renal": {"egfr": 95}}
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
FHIR_JSON = "application/fhir+json"


def check(client, order, profile=FULL_PROFILE, **params):
    body = {"as_of": AS_OF, "order": order}
    if profile is not None:
        body["profile"] = profile
    r = client.post("/v1/order-checks", json=body, params=params)
    assert r.status_code == 200, r.text
    if r.headers["content-type"] == "application/json":
        # The JSON answer is sent as plain data, not through the model: it must be the model's own JSON.
        assert OrderCheckResponse.model_validate_json(r.content).model_dump_json().encode() == r.content
    return r.json()


def by_rule(items):
    return {i["rule_id"]: i for i in items}


def profile(**changes):
    out = copy.deepcopy(FULL_PROFILE)
    out.update(changes)
    return out


# --- verdict paths ---------------------------------------------------------------------------------------------------

def test_stop_when_ldn_is_ordered_for_a_patient_on_an_opioid(client, kb):
    data = check(client, dict(LDN, kind="new"), profile(medications=[OXY]))
    assert data["verdict"] == "stop"
    assert data["knowledge_version"] == kb.version and data["as_of"] == AS_OF
    issue = by_rule(data["issues"])["ldn-opioid-coadministration"]
    assert issue["severity"] == "critical" and issue["rule_version"] == kb.rules[issue["rule_id"]].version
    assert issue["evidence"]["current_opioids"][0]["name"] == OXY["name"]
    assert issue["citations"] and all(c["url"] == f"/v1/sources/{c['source_id']}" for c in issue["citations"])
    assert any(r.startswith("critical: ldn-opioid-coadministration") for r in data["verdict_reasons"])


@pytest.mark.parametrize("opioid", [
    {"name": "Percocet 5/325", "kind": "new"},
    {"name": "home medication", "codes": [{"system": "rxnorm", "code": "1049621"}], "kind": "new"},
    {"name": "Tylenol #3", "kind": "refill"},
    {"name": "tramadol 50 mg tablet", "dose_mg": 50, "frequency": "q6h", "kind": "new"},
])
def test_stop_the_reverse_an_opioid_ordered_for_a_patient_on_ldn(client, opioid):
    data = check(client, opioid, profile(medications=[LDN_ON_PROFILE]))
    assert data["order"]["category"] == "opioid"
    assert data["verdict"] == "stop"
    issue = by_rule(data["issues"])["ldn-opioid-coadministration"]
    assert issue["dur"]["reason_for_service"] == "DD" and issue["detected_issue_code"]["code"] == "DACT"
    assert issue["evidence"]["ldn"]["source"] == "medications"
    ordered = issue["evidence"]["current_opioids"][0]
    assert ordered["name"] == opioid["name"]
    assert ordered["status"] == ("active" if opioid["kind"] == "refill" else "proposed")


def test_review_when_a_warning_fires(client):
    data = check(client, dict(LDN, dose_mg="9 mg"))
    assert data["verdict"] == "review"
    assert [i["rule_id"] for i in data["issues"]] == ["ldn-dose-above-range"]
    assert data["not_evaluated"] == [] or {n["severity"] for n in data["not_evaluated"]} == {"info"}


@pytest.mark.parametrize("missing,rule", [
    ("medications", "ldn-opioid-coadministration"),
    ("procedures", "ldn-perioperative-hold"),
    ("renal", "ldn-renal-impairment"),
])
def test_review_never_pass_when_a_rule_that_could_warn_was_not_evaluated(client, missing, rule):
    prof = profile()
    del prof[missing]
    data = check(client, LDN, prof)
    assert data["issues"] == []
    assert data["verdict"] == "review"
    skipped = by_rule(data["not_evaluated"])
    assert missing in skipped[rule]["missing"]
    assert any(r.startswith(f"not evaluated, could have been {skipped[rule]['severity']}: {rule}")
               for r in data["verdict_reasons"])


def test_review_when_nothing_is_known_about_the_patient(client, kb):
    data = check(client, LDN, profile=None)
    assert data["verdict"] == "review"
    assert {"ldn-opioid-coadministration", "ldn-perioperative-hold"} <= set(by_rule(data["not_evaluated"]))
    assert by_rule(data["not_evaluated"])["ldn-opioid-coadministration"]["reason"] == \
        "medication list not provided: LDN with an opioid not checked"


def test_pass_when_every_applicable_rule_ran_and_none_fired_above_info(client):
    data = check(client, LDN)
    assert data["verdict"] == "pass", data["verdict_reasons"]
    assert data["issues"] == []
    # The refill carries no previous dose: the info-only titration rules could not run. They are listed, and they
    # could not have changed a pass.
    assert [(n["rule_id"], n["severity"]) for n in data["not_evaluated"]] == [("ldn-titration-interval", "info"),
                                                                              ("ldn-titration-step", "info")]


def test_pass_with_info_issues_only(client):
    data = check(client, dict(LDN, dose_mg=1.5, kind="new"))
    assert data["verdict"] == "pass"
    assert {i["severity"] for i in data["issues"]} == {"info"}
    assert "ldn-side-effect-counselling" in by_rule(data["issues"])
    assert "info issue(s) to note" in data["verdict_reasons"][0]


def test_stop_beats_review_and_reasons_list_both(client):
    data = check(client, dict(LDN, dose_mg="9 mg"), profile(medications=[OXY], renal=None))
    assert data["verdict"] == "stop"
    kinds = [r.split(":")[0] for r in data["verdict_reasons"]]
    assert kinds[0] == "critical" and "warning" in kinds and any(k.startswith("not evaluated") for k in kinds)


def test_an_opioid_for_a_patient_known_not_to_take_ldn_passes(client):
    data = check(client, {"name": "Percocet 5/325", "kind": "new"}, {"medications": [{"name": "acetaminophen"}]})
    assert data["verdict"] == "pass", data["verdict_reasons"]
    assert data["not_evaluated"] == []
    # No procedure list, but the medication list shows no LDN: the perioperative hold cannot fire, and says why.
    hold = by_rule(data["not_applicable"])["ldn-perioperative-hold"]
    assert hold["reason"] == "cannot fire: ldn.in_use is false and the rule needs true"
    assert by_rule(data["not_applicable"])["ldn-dose-above-range"]["reason"].startswith("checks LDN orders")
    assert data["unrecognized"] == []


@pytest.mark.parametrize("order", [{"name": "Percocet 5/325", "kind": "new"}, {"name": "acetaminophen", "kind": "new"},
                                   {"name": "Naltrexone 4.5 mg capsule", "kind": "refill", "dose_mg": 4.5}])
def test_an_unrecognised_profile_entry_is_never_a_pass(client, order):
    meds = [{"name": "acetaminophen"}, {"name": "Zorvexa 10 mg"}]
    data = check(client, order, {"medications": meds, "procedures": [], "renal": {"egfr": 90}})
    assert data["verdict"] == "review", data["verdict_reasons"]
    assert any(r.startswith("not recognised: profile.medications[1]") for r in data["verdict_reasons"])
    assert data["unrecognized"] == [{"field": "profile.medications[1]", "name": "Zorvexa 10 mg", "codes": []}]
    known = check(client, order, {"medications": meds[:1], "procedures": [], "renal": {"egfr": 90}})
    assert known["verdict"] == "pass", known["verdict_reasons"]      # the same order, every entry known


def test_an_opioid_without_a_medication_list_is_never_a_pass(client):
    data = check(client, {"name": "Percocet 5/325", "kind": "new"}, profile=None)
    assert data["verdict"] == "review"
    # Every rule with an opioid counterpart is listed: the LDN ones and the standard-naltrexone blockade.
    assert set(by_rule(data["not_evaluated"])) == {"ldn-opioid-coadministration", "ldn-perioperative-hold",
                                                   "ldn-nonelective-procedure", "naltrexone-opioid-blockade"}
    assert any("no profile medication list" in n for n in data["notes"])


@pytest.mark.parametrize("status,verdict", [("active", "stop"), ("proposed", "stop"), ("on-hold", "pass"),
                                            ("stopped", "pass"), ("completed", "pass")])
def test_an_opioid_order_follows_the_status_of_the_ldn_on_the_profile(client, status, verdict):
    data = check(client, {"name": "oxycodone 5 mg", "kind": "new"},
                 {"medications": [dict(LDN_ON_PROFILE, status=status)]})
    assert data["verdict"] == verdict
    if verdict == "stop":
        # LDN in use and no procedure list: the perioperative hold could not run, and the answer says so.
        assert by_rule(data["not_evaluated"])["ldn-perioperative-hold"]["missing"] == ["procedures"]


def test_perioperative_hold_applies_to_an_opioid_order(client):
    prof = profile(medications=[LDN_ON_PROFILE],
                   procedures=[{"name": "Knee replacement", "date": "2026-03-10", "opioids_expected": True}])
    data = check(client, {"name": "Oxycodone 5 mg tablet", "kind": "new"}, prof)
    issues = by_rule(data["issues"])
    assert {"ldn-opioid-coadministration", "ldn-perioperative-hold"} <= set(issues)
    assert issues["ldn-perioperative-hold"]["suggested_mitigation"] == {
        "system": V3, "code": "12", "display": "Temporarily Suspended Concurrent Therapy"}


def test_profile_issues_do_not_decide_an_opioid_order(client):
    prof = profile(medications=[LDN_ON_PROFILE], renal={"egfr": 42})
    data = check(client, {"name": "Percocet 5/325", "kind": "new"}, prof)
    assert "ldn-renal-impairment" in by_rule(data["profile_issues"])
    assert "ldn-renal-impairment" not in by_rule(data["issues"])
    assert data["verdict"] == "stop"          # from the opioid, not from the kidneys
    # The same profile with a non-opioid, non-naltrexone order: the renal finding is listed, the verdict is pass.
    data = check(client, {"name": "acetaminophen 500 mg", "kind": "new"}, prof)
    assert data["verdict"] == "pass" and data["issues"] == []
    assert "ldn-renal-impairment" in by_rule(data["profile_issues"])


def test_anything_else_is_checked_only_for_what_applies_and_the_answer_says_so(client, kb):
    data = check(client, {"name": "Naloxone 4 mg nasal spray", "kind": "new"}, profile=None)
    assert data["order"]["category"] == "other"
    assert data["verdict"] == "pass" and data["verdict_reasons"] == ["no LDN rule concerns this order"]
    assert {n["rule_id"] for n in data["not_applicable"]} == {r.id for r in kb.active_rules}
    assert any("no LDN rule concerns it" in n for n in data["notes"])


def test_an_unrecognised_order_is_never_a_pass(client, kb):
    data = check(client, {"name": "Zorvexa 10 mg", "kind": "new"}, profile(medications=[LDN_ON_PROFILE]))
    assert data["order"]["category"] == "unrecognized"
    assert data["verdict"] == "review"
    assert "the ordered medication was not recognised: it could not be checked" in data["verdict_reasons"]
    assert data["unrecognized"][0] == {"field": "order", "name": "Zorvexa 10 mg", "codes": []}
    assert {n["rule_id"] for n in data["not_applicable"]} == {r.id for r in kb.active_rules}


def test_every_active_rule_is_accounted_for(client, kb):
    for order, prof in [(LDN, None), (LDN, FULL_PROFILE), ({"name": "Percocet", "kind": "new"}, None),
                        ({"name": "Contrave", "kind": "new"}, {"medications": [LDN_ON_PROFILE]})]:
        data = check(client, order, prof)
        listed = [i["rule_id"] for key in ("issues", "profile_issues", "not_evaluated", "not_applicable")
                  for i in data[key]]
        assert len(listed) == len(set(listed))
        silent = {r.id for r in kb.active_rules} - set(listed)
        # A rule missing from every list ran, concerns the order, and stayed silent.
        assert all(concerns(kb.rules[r], frozenset({data["order"]["category"]})) for r in silent)


def test_same_request_same_answer(client):
    body = (dict(LDN, dose_mg="9 mg"), profile(medications=[OXY]))
    first, second = check(client, *body), check(client, *body)
    assert first.pop("order_check_id") != second.pop("order_check_id")
    assert first == second


# --- what counts as LDN, duplicates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("order,category,form", [
    ({"name": "Naltrexone HCl 4.5 mg capsule, compounded"}, "ldn", "ldn"),
    ({"name": "naltrexone 1.5 mg capsule"}, "ldn", "ldn"),
    ({"name": "naltrexone", "dose_mg": 3}, "ldn", "ldn"),
    ({"name": "low dose naltrexone"}, "ldn", "ldn"),
    ({"name": "LDN 45 mg"}, "ldn", "oral-standard"),          # written as LDN at a standard strength: still LDN
    ({"codes": [{"system": "rxnorm", "code": "7243"}], "dose_mg": 4.5}, "ldn", "ldn"),
    ({"name": "naltrexone 50 mg tablet", "dose_mg": 50}, "naltrexone", "oral-standard"),
    ({"name": "Revia 50 mg"}, "naltrexone", "oral-standard"),
    ({"name": "Vivitrol 380 mg injection"}, "naltrexone", "extended-release-injection"),
    ({"name": "Contrave 8/90 mg"}, "naltrexone", "combination"),
    ({"name": "bupropion/naltrexone"}, "naltrexone", "combination"),
    ({"name": "Embeda 20 mg/0.8 mg capsule"}, "opioid", None),
    ({"name": "Suboxone 8/2"}, "opioid", None),
    ({"name": "Relistor 12 mg"}, "other", None),
])
def test_what_the_order_is(client, order, category, form):
    data = check(client, dict(order, kind="new"))
    assert data["order"]["category"] == category
    assert data["order"]["naltrexone_form"] == form


@pytest.mark.parametrize("duplicate", [
    {"name": "bupropion/naltrexone 8 mg/90 mg extended-release tablet", "kind": "new"},
    {"name": "Contrave", "kind": "refill"},
    {"name": "Contrave", "codes": [{"system": "rxnorm", "code": "1551468"}], "kind": "new"},
    {"name": "Vivitrol 380 mg injection", "kind": "new"},
    {"name": "naltrexone hydrochloride 50 mg tablet", "dose_mg": 50, "kind": "new"},
])
def test_another_naltrexone_product_ordered_for_a_patient_on_ldn_is_a_duplicate(client, duplicate):
    data = check(client, duplicate, profile(medications=[LDN_ON_PROFILE]))
    assert data["order"]["category"] == "naltrexone"
    assert data["verdict"] == "review"
    issue = by_rule(data["issues"])["ldn-duplicate-naltrexone"]
    assert issue["dur"]["reason_for_service"] == "ID"        # same ingredient: naltrexone
    assert issue["detected_issue_code"]["code"] == "DUPTHPY"
    assert issue["evidence"]["other_naltrexone"][0]["name"] == duplicate["name"]
    assert "ldn-opioid-coadministration" not in by_rule(data["issues"])


def test_ldn_ordered_for_a_patient_on_contrave_is_a_duplicate(client):
    data = check(client, LDN, profile(medications=[{"name": "Contrave", "status": "active"}]))
    assert data["verdict"] == "review"
    assert by_rule(data["issues"])["ldn-duplicate-naltrexone"]["dur"]["reason_for_service"] == "ID"


def test_embeda_is_an_opioid_not_a_duplicate(client):
    # Ordered for a patient on LDN: the reverse check, not a duplicate.
    data = check(client, {"name": "Embeda 20 mg/0.8 mg capsule", "kind": "new"},
                 profile(medications=[LDN_ON_PROFILE]))
    assert data["verdict"] == "stop"
    assert set(by_rule(data["issues"])) == {"ldn-opioid-coadministration"}
    assert "ldn-duplicate-naltrexone" not in by_rule(data["profile_issues"])
    # On the profile of a patient ordered LDN: the same.
    data = check(client, LDN, profile(medications=[{"name": "Embeda", "status": "active"}]))
    assert data["verdict"] == "stop"
    assert "ldn-opioid-coadministration" in by_rule(data["issues"])
    assert "ldn-duplicate-naltrexone" not in by_rule(data["issues"])


def test_standard_naltrexone_for_a_patient_not_on_ldn(client):
    data = check(client, {"name": "naltrexone 50 mg tablet", "dose_mg": 50, "kind": "new"}, {"medications": []})
    assert data["order"]["category"] == "naltrexone"
    assert data["verdict"] == "pass"
    assert "ldn-duplicate-naltrexone" not in by_rule(data["not_evaluated"])


@pytest.mark.parametrize("name,rule", [("LDN 45 mg", "ldn-dose-above-range"),
                                       ("compounded naltrexone 50 mg capsule", "ldn-dose-addiction-range")])
def test_an_ldn_order_at_a_standard_strength_is_flagged_as_a_dose_error(client, name, rule):
    data = check(client, {"name": name, "kind": "new", "frequency": "daily"})
    assert rule in by_rule(data["issues"]) and data["verdict"] == "review"


# --- units and forms --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dose", [4.5, "4.5 mg", "4.5mg", "4.5MG", "4500 mcg", "4500 µg", "4500 ug", "0.0045 g",
                                  "4.5"])
def test_each_unit_form_checks_the_same(client, dose):
    data = check(client, dict(LDN, dose_mg=dose))
    assert data["order"]["dose_mg"] == 4.5 and data["order"]["daily_dose_mg"] == 4.5
    assert data["verdict"] == "pass"


def test_units_reach_the_rules(client):
    data = check(client, dict(LDN, dose_mg="500 mcg"))                                    # 0.5 mg: below range
    assert by_rule(data["issues"])["ldn-dose-below-range"]["dur"]["reason_for_service"] == "LD"
    data = check(client, dict(LDN, dose_mg="0.05 g"))                                     # 50 mg
    assert "ldn-dose-addiction-range" in by_rule(data["issues"])
    data = check(client, dict(LDN, kind="change", dose_mg="4.5 mg", previous_dose_mg="1500 mcg"))
    step = by_rule(data["issues"])["ldn-titration-step"]
    assert step["evidence"]["ldn"]["previous_dose_mg"] == 1.5


@pytest.mark.parametrize("field,value,words", [
    ("dose_mg", "4.5 kg", "cannot read"),
    ("dose_mg", "lots", "cannot read"),
    ("dose_mg", "600 mg", "outside 0.001-500 mg"),
    ("dose_mg", "0.6 g", "600 mg, outside"),
    ("dose_mg", 0, "greater than or equal"),
    ("dose_mg", 501, "less than or equal"),
    ("dose_mg", True, "number"),
    ("previous_dose_mg", "4,5 mg", "cannot read"),
])
def test_an_unreadable_dose_is_a_problem_naming_the_field(client, field, value, words):
    r = client.post("/v1/order-checks", json={"order": dict(LDN, **{field: value})})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    (error,) = [e for e in problem["errors"] if e["field"] == f"order.{field}"]
    assert words.lower() in error["message"].lower()
    assert problem["detail"].startswith(f"order.{field}")


def test_frequency_turns_the_dose_into_a_daily_dose(client):
    data = check(client, dict(LDN, dose_mg="4.5 mg", frequency="BID"))
    assert data["order"]["administrations_per_day"] == 2 and data["order"]["daily_dose_mg"] == 9
    assert "ldn-dose-above-range" in by_rule(data["issues"]) and data["verdict"] == "review"
    data = check(client, {k: v for k, v in LDN.items() if k != "frequency"})
    assert data["order"]["daily_dose_mg"] == 4.5
    assert "frequency not given: the dose is taken as the daily dose" in data["notes"]


def test_a_frequency_that_is_not_understood_never_passes(client):
    data = check(client, dict(LDN, frequency="as directed"))
    assert data["order"]["daily_dose_mg"] is None and data["verdict"] == "review"
    assert "ldn-dose-above-range" in by_rule(data["not_evaluated"])
    assert any(n.startswith("frequency not understood") for n in data["notes"])


def test_an_impossible_daily_dose_is_said_and_never_passes(client):
    data = check(client, dict(LDN, dose_mg="500 mg", frequency="QID"))
    assert data["order"]["daily_dose_mg"] is None and data["verdict"] == "review"
    assert any("2000 mg a day, outside" in n for n in data["notes"])


def test_frequency_can_give_the_time_of_day(client):
    assert "ldn-bedtime-dosing" not in by_rule(check(client, dict(LDN, frequency="qhs"))["not_evaluated"])
    data = check(client, dict(LDN, frequency="daily", timing="morning"))
    assert "ldn-bedtime-dosing" in by_rule(data["issues"])


def test_order_kinds(client):
    new = by_rule(check(client, dict(LDN, kind="new"))["issues"])
    assert {"ldn-side-effect-counselling", "ldn-titration-start"} <= set(new)
    refill = check(client, dict(LDN, kind="refill"))
    assert refill["issues"] == []
    # A change without its previous dose is not mistaken for a new start, and says what it could not check.
    change = check(client, dict(LDN, kind="change"))
    assert change["issues"] == [] and change["verdict"] == "pass"
    assert any("without a usable previous dose" in n for n in change["notes"])
    change = check(client, dict(LDN, kind="change", previous_dose_mg=1.5, last_dose_change="2026-02-25"))
    assert "ldn-titration-step" in by_rule(change["issues"])


def test_compounded_ldn_described_in_free_text(client):
    data = check(client, {"name": "Naltrexone HCl 4.5 mg capsule, compounded", "kind": "new"})
    assert data["order"]["category"] == "ldn" and data["order"]["naltrexone_form"] == "ldn"


# --- codes: NDC and other systems -------------------------------------------------------------------------------------

def test_an_ndc_the_terminology_does_not_know_is_reported(client):
    order = dict(LDN, codes=[{"system": "http://hl7.org/fhir/sid/ndc", "code": "12345-6789-01"}])
    data = check(client, order)
    assert data["order"]["category"] == "ldn"               # recognised by its name
    assert data["unrecognized_codes"] == [
        {"field": "order.codes[0]", "system": "http://hl7.org/fhir/sid/ndc", "code": "12345-6789-01"}]
    assert any("code(s) not recognised" in n for n in data["notes"])


def test_an_order_known_only_by_an_unknown_ndc_is_not_recognised_and_not_passed(client):
    data = check(client, {"codes": [{"system": "ndc", "code": "0093-7172-56"}], "kind": "new"})
    assert data["order"]["category"] == "unrecognized" and data["verdict"] == "review"
    assert data["unrecognized"][0]["field"] == "order"
    assert data["unrecognized_codes"][0]["field"] == "order.codes[0]"


def test_profile_codes_the_terminology_does_not_know_are_reported(client):
    prof = profile(medications=[{"name": "Oxycodone 5 mg", "codes": [{"system": "snomed", "code": "123"}]}])
    data = check(client, LDN, prof)
    assert data["unrecognized_codes"] == [{"field": "profile.medications[0].codes[0]", "system": "snomed",
                                           "code": "123"}]


def test_an_ndc_the_terminology_knows_is_recognised(tmp_path):
    # The shipped terminology has no NDC data; an NDC entry added to curated.yaml is recognised by its code.
    shutil.copytree(ROOT / "rules/terminology", tmp_path / "t")
    curated = tmp_path / "t/curated.yaml"
    curated.write_text(curated.read_text().replace("\nndc: {}\n", '\nndc: {"0093-7172-56": [oxycodone]}\n'))
    terminology = load_terminology(tmp_path / "t")
    request = OrderCheckRequest.model_validate(
        {"order": {"codes": [{"system": "ndc", "code": "0093-7172-56"}], "kind": "new"},
         "profile": {"medications": []}})
    order_plan = plan(request, terminology)
    assert order_plan.category == "opioid" and order_plan.recognition.matched_by == "ndc"
    assert order_plan.unrecognized_codes == ()


# --- DUR and ActCode mapping, as data ---------------------------------------------------------------------------------

FIRING = {   # rule id -> (order, profile, expected {severity: (NCPDP reason, significance, v3 code, mitigation)})
    "ldn-opioid-coadministration": (LDN, profile(medications=[OXY]), ("critical", "DD", 1, "DACT", None)),
    "ldn-perioperative-hold": (LDN, profile(procedures=[{"date": "2026-03-10", "opioids_expected": True}]),
                               ("warning", "DD", 2, "ALRTENDLATE", "12")),
    "ldn-dose-above-range": (dict(LDN, dose_mg=9), FULL_PROFILE, ("warning", "HD", 2, "DOSEHIND", None)),
    "ldn-dose-addiction-range": (dict(LDN, dose_mg=50), FULL_PROFILE, ("warning", "HD", 2, "DOSEHIND", None)),
    "ldn-dose-below-range": (dict(LDN, dose_mg=0.5), FULL_PROFILE, ("info", "LD", 3, "DOSELIND", None)),
    "ldn-duplicate-naltrexone": (LDN, profile(medications=[{"name": "Vivitrol"}]),
                                 ("warning", "ID", 2, "DUPTHPY", None)),
    "ldn-renal-impairment": (LDN, profile(renal={"egfr": 42}), ("warning", "DL", 2, "DOSECOND", None)),
    "ldn-bedtime-dosing": (dict(LDN, frequency="daily", timing="morning"), FULL_PROFILE,
                           ("info", "SR", 3, "DOSEIVL", None)),
    "ldn-titration-start": (dict(LDN, kind="new"), FULL_PROFILE, ("info", "SR", 3, "DOSEHIND", None)),
    "ldn-titration-step": (dict(LDN, kind="change", previous_dose_mg=1.5), FULL_PROFILE,
                           ("info", "SR", 3, "DOSEHIND", None)),
    "ldn-side-effect-counselling": (dict(LDN, kind="new"), FULL_PROFILE, ("info", "ED", 3, "CREACT", "10")),
    "ldn-titration-interval": (dict(LDN, kind="change", previous_dose_mg=3, last_dose_change="2026-02-25"),
                               FULL_PROFILE, ("info", "SR", 3, "DOSEHIND", None)),
    "ldn-nonelective-procedure": (LDN, profile(procedures=[{"date": "2026-03-02", "elective": False,
                                                            "opioids_expected": True}]),
                                  ("warning", "DD", 2, "DACT", None)),
    "naltrexone-opioid-blockade": ({"name": "Oxycodone HCl 5 mg tablet", "kind": "new"},
                                   profile(medications=[{"name": "Vivitrol"}]), ("critical", "DD", 1, "DACT", None)),
}
V3_DISPLAY = {"DACT": "drug action detected issue", "ALRTENDLATE": "end too late alert",
              "DOSEHIND": "High Dose for Indication Alert", "DOSELIND": "Low Dose for Indication Alert",
              "DUPTHPY": "Duplicate Therapy Alert", "DOSECOND": "dosage-condition alert",
              "DOSEIVL": "Dose-Interval Alert", "CREACT": "common reaction alert"}


def test_the_mapping_cases_cover_every_rule(kb):
    assert set(FIRING) == {r.id for r in kb.active_rules}


@pytest.mark.parametrize("rule_id", sorted(FIRING))
def test_every_rule_maps_to_its_dur_and_actcode(client, rule_id):
    order, prof, (severity, reason, significance, v3, mitigation) = FIRING[rule_id]
    issue = by_rule(check(client, order, prof)["issues"])[rule_id]
    assert issue["severity"] == severity
    assert issue["dur"]["reason_for_service"] == reason
    assert issue["dur"]["clinical_significance"] == significance
    assert issue["dur"]["clinical_significance_display"] == {1: "Major", 2: "Moderate", 3: "Minor"}[significance]
    assert issue["detected_issue_code"] == {"system": V3, "code": v3, "display": V3_DISPLAY[v3]}
    assert (issue["suggested_mitigation"] or {}).get("code") == mitigation


@pytest.mark.parametrize("renal,reason", [({"egfr": 42}, "DL"), ({"ckd_stage": "G4"}, "MC"),
                                          ({"dialysis": True}, "MC"), ({"egfr": 50, "ckd_stage": "G3a"}, "DL")])
def test_renal_impairment_is_a_drug_lab_conflict_only_when_an_egfr_was_sent(client, renal, reason):
    issue = by_rule(check(client, LDN, profile(renal=renal))["issues"])["ldn-renal-impairment"]
    assert issue["dur"]["reason_for_service"] == reason


def test_a_critical_perioperative_hold_is_a_major_conflict(client):
    prof = profile(medications=[LDN_ON_PROFILE], procedures=[{"date": "2026-03-02"}])
    issue = by_rule(check(client, {"name": "Percocet", "kind": "new"}, prof)["issues"])["ldn-perioperative-hold"]
    assert issue["severity"] == "critical" and issue["dur"]["clinical_significance"] == 1
    assert issue["detected_issue_code"]["code"] == "ALRTENDLATE"
    assert issue["suggested_mitigation"]["code"] == "12"


def test_clinical_significance_follows_severity_for_every_severity_a_rule_can_raise(kb):
    # The pharmacy verdict and the DUR code must not disagree: critical 1 (major), warning 2, info 3.
    for rule in kb.active_rules:
        for severity in {rule.severity, *(e.severity for e in rule.escalations)}:
            codes = resolve(rule.coding, severity, {})
            assert codes.clinical_significance == {"critical": 1, "warning": 2, "info": 3}[severity], \
                (rule.id, severity)


def test_coding_alternates_name_evidence_the_rule_shows(kb):
    for rule in kb.rules.values():
        for alternate in rule.coding.get("alternates") or ():
            if "when_evidence" in alternate:
                assert alternate["when_evidence"].split(".")[0] in rule.evidence, rule.id


def test_every_code_in_the_rules_has_a_display(kb):
    vocabulary = kb.coding_displays
    for rule in kb.rules.values():
        for entry in [rule.coding, *(rule.coding.get("alternates") or ())]:
            for field in ("ncpdp_reason_for_service", "ncpdp_clinical_significance", "professional_service",
                          "v3_act_code", "mitigation"):
                if field in entry:
                    assert vocabulary.display(field, entry[field]), (rule.id, field)


@pytest.mark.parametrize("edit,field,words", [
    (lambda c: c.update(v3_act_code="DOSEX"), "coding.v3_act_code", "DOSEX"),
    (lambda c: c.update(ncpdp_reason_for_service="XX"), "coding.ncpdp_reason_for_service", "XX"),
    (lambda c: c.update(ncpdp_clinical_significance=4), "coding.ncpdp_clinical_significance", "4"),
    (lambda c: c.pop("v3_act_code"), "coding", "v3_act_code"),
    (lambda c: c.pop("counterpart"), "coding", "counterpart"),          # DD needs its counterpart
    (lambda c: c.update(mapping_table={"x": 1}), "coding", "mapping_table"),
])
def test_a_bad_coding_block_stops_start_up_naming_the_field(tmp_path, edit, field, words):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    path = tmp_path / "rules/ldn/ldn-opioid-coadministration.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["coding"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(tmp_path / "rules")
    assert info.value.rule == "ldn-opioid-coadministration"
    assert info.value.field == field and words in str(info.value)


# --- FHIR R4 DetectedIssue --------------------------------------------------------------------------------------------

# R4 (4.0.1) DetectedIssue elements: fhir.resources ships R4B (4.3.0) and R5 models, not 4.0.1. DetectedIssue,
# Bundle and OperationOutcome did not change between R4 and R4B, so the R4B models validate the structure, and
# this list keeps the resource to R4's own elements (R5 renamed patient to subject and added category).
R4_DETECTED_ISSUE = {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
                     "modifierExtension", "identifier", "status", "code", "severity", "patient",
                     "identifiedDateTime", "identifiedPeriod", "author", "implicated", "evidence", "detail",
                     "reference", "mitigation"}
R4_OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                         "entered-in-error", "unknown"}


def fhir(client, order, prof=FULL_PROFILE, **kw):
    r = client.post("/v1/order-checks", json={"as_of": AS_OF, "order": order, "profile": prof}, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    return r.json()


def validate_r4(bundle_json):
    Bundle.model_validate(bundle_json)
    assert bundle_json["type"] == "collection"
    resources = [e["resource"] for e in bundle_json["entry"]]
    assert [e["fullUrl"] for e in bundle_json["entry"]] == [f"urn:uuid:{r['id']}" for r in resources]
    issues = [r for r in resources if r["resourceType"] == "DetectedIssue"]
    (outcome,) = [r for r in resources if r["resourceType"] == "OperationOutcome"]
    OperationOutcome.model_validate(outcome)
    for resource in issues:
        DetectedIssue.model_validate(resource)
        assert set(resource) <= R4_DETECTED_ISSUE
        assert resource["status"] in R4_OBSERVATION_STATUS and resource["severity"] in {"high", "moderate", "low"}
    return issues, outcome


def test_fhir_bundle_of_detected_issues_validates_as_r4(client):
    prof = profile(medications=[LDN_ON_PROFILE],
                   procedures=[{"name": "Knee replacement", "date": "2026-03-02", "opioids_expected": True}],
                   renal={"egfr": 42})
    order = {"name": "Percocet 5/325", "kind": "new"}
    as_json = check(client, order, prof)
    bundle = fhir(client, order, prof, params={"format": "fhir"})
    issues, outcome = validate_r4(bundle)
    assert [i["id"] for i in issues] == [i["id"] for i in as_json["issues"]]   # profile issues stay in the JSON
    assert bundle["meta"]["tag"][0]["code"] == as_json["verdict"] == "stop"
    for resource, issue in zip(issues, as_json["issues"]):
        assert resource["status"] == "final"
        assert resource["severity"] == {"critical": "high", "warning": "moderate", "info": "low"}[issue["severity"]]
        assert resource["code"]["coding"] == [issue["detected_issue_code"]]
        assert resource["identifiedDateTime"] == AS_OF
        assert resource["author"]["type"] == "Device"
        assert resource["implicated"][0] == {"display": "Percocet 5/325"}
        assert any("low-dose naltrexone" in i["display"] for i in resource["implicated"])
        assert resource["evidence"] and resource["reference"] == f"http://testserver/rules/{issue['rule_id']}"
        assert issue["summary"] in resource["detail"] and issue["action"] in resource["detail"]
    hold = next(r for r in issues if r["code"]["coding"][0]["code"] == "ALRTENDLATE")
    assert hold["severity"] == "high"
    (mitigation,) = hold["mitigation"]
    assert mitigation["action"]["coding"] == [{"system": V3, "code": "12",
                                               "display": "Temporarily Suspended Concurrent Therapy"}]
    assert mitigation["action"]["text"].startswith("Suggested, not yet taken")
    assert "date" not in mitigation and "author" not in mitigation
    assert outcome["issue"][0]["diagnostics"].startswith("verdict stop:")


def test_fhir_for_an_ldn_order_implicates_the_profile_opioid(client):
    issues, _ = validate_r4(fhir(client, LDN, profile(medications=[OXY]), headers={"Accept": FHIR_JSON}))
    (issue,) = issues
    assert [i["display"] for i in issue["implicated"]] == [LDN["name"], OXY["name"]]


def test_fhir_says_what_was_not_checked(client):
    bundle = fhir(client, {"codes": [{"system": "ndc", "code": "0093-7172-56"}], "kind": "new"}, None,
                  params={"format": "fhir"})
    issues, outcome = validate_r4(bundle)
    assert issues == [] and bundle["meta"]["tag"][0]["code"] == "review"
    codes = [i["code"] for i in outcome["issue"]]
    assert "not-found" in codes and "code-invalid" in codes
    bundle = fhir(client, LDN, None, params={"format": "fhir"})
    _, outcome = validate_r4(bundle)
    assert any(i["code"] == "incomplete" and "ldn-opioid-coadministration" in i["diagnostics"]
               for i in outcome["issue"])


def test_fhir_is_chosen_by_accept_or_format_and_format_wins(client):
    body = {"as_of": AS_OF, "order": LDN, "profile": FULL_PROFILE}
    r = client.post("/v1/order-checks", json=body, headers={"Accept": "application/fhir+json; fhirVersion=4.0"})
    assert r.headers["content-type"].startswith(FHIR_JSON) and r.json()["resourceType"] == "Bundle"
    r = client.post("/v1/order-checks", json=body, params={"format": "json"}, headers={"Accept": FHIR_JSON})
    assert r.headers["content-type"] == "application/json" and r.json()["verdict"] == "pass"
    r = client.post("/v1/order-checks", json=body)
    assert r.headers["content-type"] == "application/json"
    r = client.post("/v1/order-checks", json=body, params={"format": "xml"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


# --- errors, access, logs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"order": {"name": "LDN 4.5 mg"}}, "order.kind"),
    ({"order": dict(LDN, kind="renewal")}, "order.kind"),
    ({"order": {"kind": "new"}}, "order"),
    ({"order": dict(LDN, strength="4.5 mg")}, "order.strength"),
    ({"order": LDN, "profile": {"medications": "oxycodone"}}, "profile.medications"),
    ({"order": LDN, "profile": {"renal": {"egfr": -1}}}, "profile.renal.egfr"),
    ({"order": LDN, "as_of": "yesterday"}, "as_of"),
    ({"order": LDN, "pharmacy": ""}, "pharmacy"),
    ({"order": LDN, "patient": {"id": "p1"}}, "patient"),
    ({}, "order"),
])
def test_bad_input_is_a_problem_naming_the_field(client, body, field):
    r = client.post("/v1/order-checks", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


def test_malformed_json_is_400(client):
    r = client.post("/v1/order-checks", content=b'{"order": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_order_checks_need_the_order_check_scope(tmp_path, evaluator):
    (tmp_path / "keys.yaml").write_text(yaml.safe_dump({"keys": [
        {"id": "pharmacy", "sha256": hash_key("k-order"), "scopes": ["order-check"]},
        {"id": "ehr", "sha256": hash_key("k-eval"), "scopes": ["evaluate"]}]}))
    secured = TestClient(create_app(Settings(api_keys_file=tmp_path / "keys.yaml"), evaluator=evaluator))
    body = {"order": LDN}
    assert secured.post("/v1/order-checks", json=body).status_code == 401
    assert secured.post("/v1/order-checks", json=body, headers={"X-API-Key": "k-eval"}).status_code == 403
    assert secured.post("/v1/order-checks", json=body, headers={"X-API-Key": "k-order"}).status_code == 200


def test_no_medication_names_or_free_text_in_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "Zzyzxnaltrexone-private-note"
    order = dict(LDN, name=f"Naltrexone 4.5 mg {secret}", frequency=f"qhs {secret}", timing=f"bedtime {secret}")
    prof = profile(medications=[{"name": f"oxycodone {secret}"}], procedures=[{"name": secret, "date": AS_OF}])
    client.post("/v1/order-checks", json={"order": order, "profile": prof, "pharmacy": secret, "prescriber": secret})
    client.post("/v1/order-checks", json={"order": dict(order, dose_mg=f"4.5 {secret}")})
    assert secret not in caplog.text
