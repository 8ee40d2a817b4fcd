"""Issue 11's new rules in pharmacy order checks: the standard-naltrexone blockade both ways (counterpart: either
class), and the non-elective procedure for an opioid order."""
from __future__ import annotations

import pytest

from service.core.scope import concerns, counterparts

from .test_order_checks import FULL_PROFILE, LDN_ON_PROFILE, OXY, by_rule, check, profile

BLOCKADE = "naltrexone-opioid-blockade"


@pytest.mark.parametrize("naltrexone", [{"name": "Vivitrol 380 mg injection", "status": "active"},
                                        {"name": "Revia 50 mg", "status": "active"}])
def test_an_opioid_ordered_for_a_patient_on_blocking_naltrexone_stops(client, naltrexone):
    data = check(client, {"name": "Percocet 5/325", "kind": "new"}, profile(medications=[naltrexone]))
    assert data["order"]["category"] == "opioid"
    assert data["verdict"] == "stop"
    issue = by_rule(data["issues"])[BLOCKADE]
    assert (issue["dur"]["reason_for_service"], issue["dur"]["clinical_significance"]) == ("DD", 1)
    assert issue["detected_issue_code"]["code"] == "DACT"


def test_blocking_naltrexone_ordered_for_a_patient_on_an_opioid_stops(client):
    data = check(client, {"name": "naltrexone hydrochloride 50 mg tablet", "dose_mg": 50, "kind": "new"},
                 profile(medications=[OXY]))
    assert data["order"]["category"] == "naltrexone"
    assert data["verdict"] == "stop"
    assert BLOCKADE in by_rule(data["issues"])


def test_blocking_naltrexone_without_an_opioid_passes(client):
    data = check(client, {"name": "Vivitrol 380 mg injection", "kind": "new"}, FULL_PROFILE)
    assert data["verdict"] == "pass", data["verdict_reasons"]


def test_a_list_counterpart_concerns_either_class(kb):
    rule = kb.rules[BLOCKADE]
    assert counterparts(rule) == {"opioid", "naltrexone"}
    assert all(concerns(rule, frozenset({c})) for c in ("opioid", "naltrexone", "ldn"))
    assert not concerns(rule, frozenset({"other"})) and not concerns(rule, frozenset({"unrecognized"}))
    assert counterparts(kb.rules["ldn-duplicate-naltrexone"]) == {"naltrexone"}
    assert counterparts(kb.rules["ldn-dose-above-range"]) == frozenset()


def test_an_opioid_ordered_before_an_urgent_procedure_of_a_patient_on_ldn(client):
    prof = profile(medications=[LDN_ON_PROFILE],
                   procedures=[{"name": "Appendectomy", "date": "2026-03-01", "elective": False}])
    data = check(client, {"name": "Morphine 4 mg injection", "kind": "new"}, prof)
    issue = by_rule(data["issues"])["ldn-nonelective-procedure"]
    assert issue["severity"] == "critical" and issue["dur"]["clinical_significance"] == 1
    assert "ldn-perioperative-hold" not in by_rule(data["issues"])


@pytest.mark.parametrize("order,prof", [
    ({"name": "naltrexone", "kind": "new"}, [OXY]),                       # the naltrexone ordered
    ({"name": "Percocet 5/325", "kind": "new"}, [{"name": "naltrexone"}]),   # the opioid ordered
])
def test_a_naltrexone_of_unknown_strength_with_an_opioid_stops_through_one_opioid_rule(client, order, prof):
    data = check(client, order, profile(medications=prof))
    assert data["verdict"] == "stop"
    assert {"ldn-opioid-coadministration", BLOCKADE} & set(by_rule(data["issues"]))
