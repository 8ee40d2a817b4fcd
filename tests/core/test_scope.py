"""The one scope decision (service/core/scope.py): what a medication is to the LDN rules, and which rules concern
an order, a draft or a booking. The channels use it as is: the cross-channel tests hold them to it."""
from __future__ import annotations

import pytest

from service.cds_hooks import fhir
from service.cds_hooks.fhir_mapping import read_medication
from service.core.medications import classify
from service.core.scope import concerned, inputs_needed, product_class
from service.order_checks.mapping import plan
from service.order_checks.models import OrderCheckRequest

from ..cds_hooks.support import (appointment, bundle, cards_by_rule, hook_request, make_client, medication_request,
                                 oxycodone, post_hook, record)

OPIOID_RULE, PERIOP, DUPLICATE = "ldn-opioid-coadministration", "ldn-perioperative-hold", "ldn-duplicate-naltrexone"


@pytest.mark.parametrize("name, dose, expected", [
    ("Naltrexone 4.5 mg capsule (compounded)", None, "ldn"),
    ("Naltrexone", None, "ldn"),                      # no strength: checked as LDN (dose rules say what is missing)
    ("LDN 45 mg", None, "ldn"),                       # written as LDN: LDN at a wrong dose
    ("Naltrexone 50 mg tablet", None, "naltrexone"),
    ("Vivitrol 380 mg injection", None, "naltrexone"),
    ("Naltrexone", 50.0, "naltrexone"),               # the given dose is the strength
    ("Percocet 5/325", None, "opioid"),
    ("Acetaminophen 500 mg tablet", None, "other"),
    ("Zqxv 10 mg", None, "unrecognized"),
])
def test_product_class(kb, name, dose, expected):
    rec = classify(kb.terminology, text=name, dose_mg=dose)
    assert product_class(rec, name, kb.terminology) == expected


def _ids(kb, subjects):
    return {r.id for r in concerned(kb.rules.values(), frozenset(subjects))}


def test_ldn_and_the_chart_concern_every_active_rule(kb):
    every = {r.id for r in kb.active_rules}
    assert _ids(kb, {"ldn"}) == every and _ids(kb, {"chart"}) == every


def test_the_other_side_of_a_conflict_concerns_its_rules_only(kb):
    opioid = _ids(kb, {"opioid"})
    assert {OPIOID_RULE, PERIOP} <= opioid and DUPLICATE not in opioid
    assert DUPLICATE in _ids(kb, {"naltrexone"}) and OPIOID_RULE not in _ids(kb, {"naltrexone"})
    for rule_id in opioid | _ids(kb, {"naltrexone"}):          # decided by rule data, nothing else
        counterpart = kb.rules[rule_id].coding.get("counterpart")
        assert counterpart is not None, rule_id


def test_a_booking_concerns_the_rules_that_need_procedures(kb):
    booked = _ids(kb, {"procedure"})
    assert PERIOP in booked and all("procedures" in kb.rules[r].requires for r in booked)


def test_other_and_unrecognised_concern_nothing(kb):
    assert _ids(kb, {"other"}) == set() and _ids(kb, {"unrecognized"}) == set()


def test_inputs_needed_follow_the_rules(kb):
    assert "renal" not in inputs_needed(kb.rules.values(), frozenset({"naltrexone"}))
    assert "procedures" in inputs_needed(kb.rules.values(), frozenset({"opioid"}))
    assert {"renal", "procedures", "medications"} <= inputs_needed(kb.rules.values(), frozenset({"ldn"}))


@pytest.mark.parametrize("name", ["Naltrexone", "Naltrexone 4.5 mg capsule (compounded)", "Naltrexone 50 mg tablet",
                                  "Oxycodone 5 mg tablet", "Metformin 500 mg tablet"])
def test_order_checks_and_cds_hooks_read_an_order_alike(evaluator, name):
    kb = evaluator.kb
    order_category = plan(OrderCheckRequest.model_validate({"order": {"name": name, "kind": "new"}}),
                          kb.terminology).category
    draft = medication_request("d", text=name, status="draft")
    item = read_medication(draft, fhir.ResourceIndex(), kb.terminology, kb.clinical_codes, draft=True, selected=True)
    assert item is not None and item.product == order_category


def test_an_opioid_draft_gets_the_perioperative_hold_like_an_opioid_order(evaluator):
    """Order checks and CDS Hooks share the scope: the hold concerns an opioid ordered for a patient on LDN with
    surgery ahead, in both."""
    client = make_client(evaluator)
    on_ldn = medication_request("ldn-active", text="Naltrexone 4.5 mg capsule (compounded)", dose_mg=4.5)
    surgery = appointment("apt-1", "2026-03-04T08:00:00Z")
    body = hook_request("order-sign", drafts=[oxycodone("oxy-draft", status="draft")],
                        prefetch=record(medicationRequests=bundle(on_ldn), appointments=bundle(surgery)))
    assert {OPIOID_RULE, PERIOP} <= set(cards_by_rule(post_hook(client, "ldn-order-sign", body)))
    order = client.post("/v1/order-checks", json={
        "as_of": "2026-03-01", "order": {"name": "Oxycodone 5 mg tablet", "kind": "new"},
        "profile": {"medications": [{"name": "Naltrexone 4.5 mg capsule (compounded)", "status": "active"}],
                    "procedures": [{"name": "Total knee replacement", "date": "2026-03-04", "elective": True}]}})
    assert {OPIOID_RULE, PERIOP} <= {i["rule_id"] for i in order.json()["issues"]}
