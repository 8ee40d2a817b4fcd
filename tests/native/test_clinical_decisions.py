"""Issue 11, the product owner's clinical decisions, through POST /v1/evaluations: the naltrexone blockade, the
non-elective procedure, kidney function, renewal and titration interval, bedtime negations."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BLOCKADE, LDN_OPIOID = "naltrexone-opioid-blockade", "ldn-opioid-coadministration"
HOLD, URGENT = "ldn-perioperative-hold", "ldn-nonelective-procedure"
OXY = {"name": "Oxycodone HCl 5 mg tablet", "status": "active"}


def evaluate(client, body):
    r = client.post("/v1/evaluations", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    return data, {a["rule_id"]: a for a in data["advisories"]}, {n["rule_id"]: n for n in data["not_evaluated"]}


# --- naltrexone-opioid-blockade ---------------------------------------------------------------------------------

@pytest.mark.parametrize("naltrexone", ["Revia 50 mg tablet", "naltrexone hydrochloride 50 mg tablet",
                                        "Vivitrol 380 mg injection", "Contrave", "Mysimba"])
@pytest.mark.parametrize("opioid_status", ["active", "proposed"])
def test_blocking_naltrexone_with_an_opioid_is_critical(client, naltrexone, opioid_status):
    body = {"medications": [{"name": naltrexone, "status": "active"}, dict(OXY, status=opioid_status)]}
    _, fired, _ = evaluate(client, body)
    advisory = fired[BLOCKADE]
    assert advisory["severity"] == "critical"
    assert advisory["evidence"]["blocking_naltrexone"][0]["name"] == naltrexone
    assert advisory["evidence"]["current_opioids"][0]["name"] == OXY["name"]
    assert LDN_OPIOID not in fired            # no LDN here: the patient is on a blocking dose, not on LDN
    quotes = {c["quote"] for c in advisory["citations"]}
    assert "Standard doses (50 mg) produce complete blockade of opioid receptors for 24-48 hours" in quotes


def test_naltrexone_ordered_for_a_patient_on_an_opioid(client):
    body = {"medications": [OXY, {"name": "Vivitrol 380 mg injection", "status": "proposed"}]}
    assert BLOCKADE in evaluate(client, body)[1]


def test_blocking_naltrexone_alone_or_stopped_is_silent(client):
    assert BLOCKADE not in evaluate(client, {"medications": [{"name": "Vivitrol"}]})[1]
    body = {"medications": [{"name": "Vivitrol", "status": "stopped"}, OXY]}
    _, fired, skipped = evaluate(client, body)
    assert BLOCKADE not in fired and BLOCKADE not in skipped


def test_blockade_is_not_evaluated_without_a_medication_list(client):
    _, _, skipped = evaluate(client, {"ldn": {"status": "active", "dose_mg": 4.5}})
    assert skipped[BLOCKADE]["severity"] == "critical" and skipped[BLOCKADE]["missing"] == ["medications"]


NALTREXONE_UNKNOWN_STRENGTH = ["naltrexone", "Naltrexone", "naltrexone hydrochloride", "naltrexone tablet",
                               "naltrexone 20 mg"]
OPIOIDS = ["Oxycodone HCl 5 mg tablet", "Percocet 5/325", "tramadol 50 mg", "morphine", "fentanyl patch",
           "codeine 30 mg", "methadone 10 mg", "buprenorphine"]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(naltrexone=st.sampled_from(NALTREXONE_UNKNOWN_STRENGTH), opioid=st.sampled_from(OPIOIDS),
       naltrexone_status=st.sampled_from(["active", "proposed"]), opioid_status=st.sampled_from(["active", "proposed"]),
       opioid_first=st.booleans(), ldn_block=st.sampled_from([None, "active", "proposed"]))
def test_a_naltrexone_of_unknown_strength_with_an_opioid_fires_one_of_the_two_opioid_rules(
        client, naltrexone, opioid, naltrexone_status, opioid_status, opioid_first, ldn_block):
    # The product owner's decision: unknown strength is read as LDN, so the LDN opioid rule fires; never neither.
    meds = [{"name": naltrexone, "status": naltrexone_status}, {"name": opioid, "status": opioid_status}]
    body = {"medications": meds[::-1] if opioid_first else meds}
    if ldn_block:
        body["ldn"] = {"status": ldn_block}
    _, fired, _ = evaluate(client, body)
    assert {LDN_OPIOID, BLOCKADE} & set(fired), sorted(fired)
    assert fired.get(LDN_OPIOID, fired.get(BLOCKADE))["severity"] == "critical"


def test_unknown_strength_is_read_as_ldn_not_as_a_duplicate(client):
    body = {"ldn": {"status": "active", "dose_mg": 4.5}, "medications": [{"name": "naltrexone"}]}
    assert "ldn-duplicate-naltrexone" not in evaluate(client, body)[1]


# --- ldn-nonelective-procedure ------------------------------------------------------------------------------------

def _procedure_body(days_ahead: int, elective, opioids_expected=True):
    day = f"2026-03-{1 + days_ahead:02d}"
    return {"as_of": "2026-03-01", "ldn": {"status": "active", "dose_mg": 4.5},
            "procedures": [{"name": "Appendectomy", "date": day, "elective": elective,
                            "opioids_expected": opioids_expected}]}


@pytest.mark.parametrize("days_ahead,severity", [(0, "critical"), (1, "warning"), (3, "warning"), (4, None)])
def test_urgent_procedure_tells_anaesthesia(client, days_ahead, severity):
    _, fired, _ = evaluate(client, _procedure_body(days_ahead, elective=False))
    assert HOLD not in fired                          # the perioperative hold looks at elective procedures only
    if severity is None:
        assert URGENT not in fired
        return
    advisory = fired[URGENT]
    assert advisory["severity"] == severity
    assert "anaesthesia" in advisory["summary"] and "blunted" in advisory["summary"]
    assert advisory["evidence"]["nonelective_procedure"]["date"] == f"2026-03-{1 + days_ahead:02d}"
    assert "service's reading" in advisory["detail"]


@pytest.mark.parametrize("elective", [True, None])
def test_elective_or_unstated_procedures_stay_with_the_perioperative_hold(client, elective):
    _, fired, _ = evaluate(client, _procedure_body(1, elective=elective))
    assert HOLD in fired and URGENT not in fired


def test_urgent_procedure_with_opioids_ruled_out_is_silent(client):
    _, fired, skipped = evaluate(client, _procedure_body(0, elective=False, opioids_expected=False))
    assert URGENT not in fired and URGENT not in skipped


# --- kidney function ---------------------------------------------------------------------------------------------

LDN = {"status": "active", "dose_mg": 4.5}
RENAL = "ldn-renal-impairment"


def test_not_on_dialysis_alone_says_nothing_about_kidney_function(client):
    data, fired, skipped = evaluate(client, {"ldn": LDN, "renal": {"dialysis": False}})
    assert RENAL not in fired
    assert skipped[RENAL]["missing"] == ["renal"]


@pytest.mark.parametrize("renal,fires", [({"ckd_stage": "G3"}, True), ({"ckd_stage": "G5D"}, True),
                                         ({"ckd_stage": "G5D", "dialysis": False}, True),
                                         ({"ckd_stage": "G2", "dialysis": False}, False),
                                         ({"egfr": 90, "dialysis": False}, False)])
def test_ckd_stages_from_problem_lists(client, renal, fires):
    _, fired, skipped = evaluate(client, {"ldn": LDN, "renal": renal})
    assert (RENAL in fired) is fires and RENAL not in skipped
    if fires:
        assert fired[RENAL]["evidence"]["renal"]["ckd_stage"] == renal["ckd_stage"]    # as sent


def test_an_unknown_ckd_stage_is_a_problem_naming_the_field(client):
    r = client.post("/v1/evaluations", json={"ldn": LDN, "renal": {"ckd_stage": "G6"}})
    assert r.status_code == 422
    assert any(e["field"] == "renal.ckd_stage" for e in r.json()["errors"])


# --- titration: renewal, interval ---------------------------------------------------------------------------------

NEW_START = {"ldn-titration-start", "ldn-side-effect-counselling"}


@pytest.mark.parametrize("start_date,new_start", [("2025-11-01", False), ("2026-02-28", False),
                                                  ("2026-03-01", True), ("2026-03-08", True), (None, True)])
def test_a_proposed_ldn_that_started_in_the_past_is_a_renewal(client, start_date, new_start):
    ldn = {"status": "proposed", "dose_mg": 4.5, **({"start_date": start_date} if start_date else {})}
    _, fired, _ = evaluate(client, {"as_of": "2026-03-01", "ldn": ldn})
    assert (NEW_START <= set(fired)) is new_start and (not NEW_START & set(fired)) is not new_start


def test_an_increase_without_the_date_of_the_last_change_reports_the_interval_as_not_evaluated(client):
    _, fired, skipped = evaluate(client, {"ldn": {"status": "active", "dose_mg": 3, "previous_dose_mg": 1.5}})
    assert "ldn-titration-step" not in fired and "ldn-titration-step" not in skipped      # the size was checked
    assert skipped["ldn-titration-interval"]["missing"] == ["ldn.last_dose_change"]
    assert skipped["ldn-titration-interval"]["reason"] == \
        "date of the last LDN dose change not provided: LDN dose increased sooner than the titration interval " \
        "not checked"


def test_an_increase_too_soon_fires_the_interval_rule(client):
    ldn = {"status": "active", "dose_mg": 3, "previous_dose_mg": 1.5, "last_dose_change": "2026-02-22"}
    _, fired, skipped = evaluate(client, {"as_of": "2026-03-01", "ldn": ldn})
    assert "ldn-titration-interval" in fired and "ldn-titration-step" not in fired
    assert "7 days after the last dose change" in fired["ldn-titration-interval"]["summary"]


# --- bedtime ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("timing,bedtime", [
    ("not at bedtime", False), ("no bedtime dose", False), ("avoid bedtime", False), ("Not at bedtime", False),
    ("at bed time", True), ("q night", True), ("qnight", True), ("every night", True), ("nightly", True),
    ("qhs", True), ("hs", True), ("Q.H.S.", True), ("morning", False)])
def test_bedtime_reading(client, timing, bedtime):
    _, fired, _ = evaluate(client, {"ldn": dict(LDN, timing=timing)})
    assert ("ldn-bedtime-dosing" not in fired) is bedtime


@pytest.mark.parametrize("block_status", ["on-hold", "stopped"])
@pytest.mark.parametrize("naltrexone", ["Naltrexone", "Naltrexone 4.5 mg capsule (compounded)"])
def test_an_ldn_block_on_hold_does_not_hide_an_ldn_the_list_shows_as_taken(client, block_status, naltrexone):
    """Never neither: the list's current naltrexone (LDN strength or none) with an opioid fires an opioid rule,
    whatever the LDN block says; the same list with the LDN entry stopped does not."""
    body = {"ldn": {"status": block_status, "dose_mg": 4.5},
            "medications": [{"name": naltrexone, "status": "active"}, OXY]}
    fired = evaluate(client, body)[1]
    assert fired[LDN_OPIOID]["severity"] == "critical"
    body["medications"][0]["status"] = "stopped"
    assert LDN_OPIOID not in evaluate(client, body)[1] and BLOCKADE not in evaluate(client, body)[1]
