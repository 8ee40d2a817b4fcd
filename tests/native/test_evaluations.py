"""POST /v1/evaluations: advisories with citations, not-evaluated rules, determinism, problem+json errors."""
from __future__ import annotations

import copy

import pytest

from service.native.models import EvaluationResponse
from service.knowledge.sources import fold_whitespace

OXY = {"name": "Oxycodone HCl 5 mg tablet", "status": "active"}


def post(client, body):
    r = client.post("/v1/evaluations", json=body)
    if r.status_code == 200:
        # The answer is sent as plain data, not through the model: it must be the model's own JSON.
        assert EvaluationResponse.model_validate_json(r.content).model_dump_json().encode() == r.content
    return r


def test_opioid_and_surgery_example(client, kb):
    body = {"as_of": "2026-03-01", "patient": {"id": "pat-123"},
            "ldn": {"status": "active", "dose_mg": 4.5, "timing": "bedtime"},
            "medications": [OXY, {"name": "Zorvexa 500 mg", "status": "active"}],
            "procedures": [{"name": "Total knee replacement", "date": "2026-03-02", "elective": True,
                            "opioids_expected": True}],
            "renal": {"egfr": 42}}
    r = post(client, body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["as_of"] == "2026-03-01"
    assert data["knowledge_version"] == kb.version
    by_rule = {a["rule_id"]: a for a in data["advisories"]}
    assert by_rule["ldn-opioid-coadministration"]["severity"] == "critical"
    assert by_rule["ldn-perioperative-hold"]["severity"] == "critical"   # 1 day left
    assert by_rule["ldn-renal-impairment"]["severity"] == "warning"
    assert [a["severity"] for a in data["advisories"]] == sorted(
        (a["severity"] for a in data["advisories"]), key=["critical", "warning", "info"].index)
    opioid = by_rule["ldn-opioid-coadministration"]
    assert opioid["evidence"]["current_opioids"][0]["name"] == OXY["name"]
    assert opioid["evidence"]["current_opioids"][0]["ingredients"][0] == "oxycodone"
    for advisory in data["advisories"]:
        assert advisory["rule_version"] == kb.rules[advisory["rule_id"]].version
        assert len(advisory["summary"]) < 140
        for c in advisory["citations"]:
            assert fold_whitespace(c["quote"]) in fold_whitespace(kb.sources[c["source_id"]].text)
            assert c["url"] == f"/v1/sources/{c['source_id']}"
    assert data["unrecognized_medications"] == [{"index": 1, "name": "Zorvexa 500 mg", "codes": [],
                                                 "why": "not a known medication (name: words not recognised: "
                                                        "'zorvexa')"}]
    # Only the titration rules lack an input (no previous dose, no last dose change was sent), and they say which.
    assert [(n["rule_id"], n["missing"]) for n in data["not_evaluated"]] == [
        ("ldn-titration-interval", ["ldn.previous_dose_mg", "ldn.last_dose_change"]),
        ("ldn-titration-step", ["ldn.previous_dose_mg"])]


def test_hold_from_date_is_procedure_minus_three_days(client):
    body = {"as_of": "2026-03-01", "ldn": {"status": "active", "dose_mg": 4.5},
            "procedures": [{"name": "Hip replacement", "date": "2026-03-20", "elective": True,
                            "opioids_expected": True}]}
    (advisory,) = [a for a in post(client, body).json()["advisories"] if a["rule_id"] == "ldn-perioperative-hold"]
    assert advisory["severity"] == "warning"
    assert "2026-03-17" in advisory["summary"]
    assert "2026-03-17" in advisory["action"] and "2026-03-18" in advisory["action"]


def test_missing_inputs_are_reported_not_evaluated(client, kb):
    data = post(client, {"ldn": {"status": "active", "dose_mg": 4.5}}).json()
    skipped = {n["rule_id"]: n for n in data["not_evaluated"]}
    assert skipped["ldn-opioid-coadministration"]["reason"] == \
        "medication list not provided: LDN with an opioid not checked"
    assert skipped["ldn-opioid-coadministration"]["severity"] == "critical"
    assert skipped["ldn-perioperative-hold"]["severity"] == "critical"
    assert skipped["ldn-perioperative-hold"]["missing"] == ["procedures"]
    assert {"ldn-renal-impairment", "ldn-duplicate-naltrexone", "ldn-bedtime-dosing"} <= set(skipped)
    # Every active rule is accounted for: it fired, it was not evaluated, or it ran and stayed silent.
    assert not set(skipped) & {a["rule_id"] for a in data["advisories"]}


def test_empty_context_evaluates_nothing_and_says_so(client, kb):
    data = post(client, {}).json()
    assert data["advisories"] == []
    assert {n["rule_id"] for n in data["not_evaluated"]} == {r.id for r in kb.active_rules}


def test_empty_medication_list_means_none_not_unknown(client):
    data = post(client, {"ldn": {"status": "active", "dose_mg": 4.5}, "medications": []}).json()
    assert "ldn-opioid-coadministration" not in {n["rule_id"] for n in data["not_evaluated"]}
    assert "ldn-opioid-coadministration" not in {a["rule_id"] for a in data["advisories"]}


def test_ldn_found_in_the_medication_list_alone(client):
    # A pharmacy-style profile: no ldn block, LDN appears as a compounded product, and an opioid is proposed.
    body = {"medications": [{"name": "Naltrexone 4.5 mg capsule (compounded)", "status": "active"},
                            {"name": "Tylenol #3", "status": "proposed"}]}
    data = post(client, body).json()
    (advisory,) = [a for a in data["advisories"] if a["rule_id"] == "ldn-opioid-coadministration"]
    assert advisory["evidence"]["ldn"]["source"] == "medications"
    assert advisory["evidence"]["ldn"]["dose_mg"] == 4.5


def test_same_request_same_answer(client):
    body = {"as_of": "2026-03-01", "ldn": {"status": "proposed", "dose_mg": 9}, "medications": [OXY]}
    first, second = post(client, body).json(), post(client, body).json()
    assert first["evaluation_id"] != second["evaluation_id"]
    first.pop("evaluation_id"), second.pop("evaluation_id")
    assert first == second


def test_as_of_drives_day_arithmetic(client):
    base = {"ldn": {"status": "active", "dose_mg": 4.5},
            "procedures": [{"date": "2026-06-10", "elective": True, "opioids_expected": True}]}
    sev = {}
    for as_of in ("2026-05-01", "2026-06-01", "2026-06-09", "2026-06-11"):
        advisories = post(client, dict(base, as_of=as_of)).json()["advisories"]
        sev[as_of] = next((a["severity"] for a in advisories if a["rule_id"] == "ldn-perioperative-hold"), None)
    assert sev == {"2026-05-01": None, "2026-06-01": "warning", "2026-06-09": "critical", "2026-06-11": None}


def test_disagreeing_sources_are_cited_and_named(client):
    data = post(client, {"ldn": {"status": "active", "dose_mg": 9}}).json()
    (advisory,) = [a for a in data["advisories"] if a["rule_id"] == "ldn-dose-above-range"]
    stances = {c["stance"] for c in advisory["citations"]}
    assert stances == {"supports", "conflicts"}
    assert "sources disagree" in advisory["detail"] and "16 mg" in advisory["detail"]


GOOD = {"ldn": {"status": "active", "dose_mg": 4.5}, "medications": [OXY]}


def _mutate(path, value):
    body = copy.deepcopy(GOOD)
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize("body,field", [
    (_mutate(["ldn", "dose_mg"], -1), "ldn.dose_mg"),
    (_mutate(["ldn", "dose_mg"], 0), "ldn.dose_mg"),
    (_mutate(["ldn", "dose_mg"], 1e9), "ldn.dose_mg"),
    (_mutate(["ldn", "dose_mg"], "lots"), "ldn.dose_mg"),
    (_mutate(["ldn", "status"], "maybe"), "ldn.status"),
    (_mutate(["ldn", "start_date"], "2026-02-30"), "ldn.start_date"),
    (_mutate(["ldn", "dosage"], 4.5), "ldn.dosage"),
    (_mutate(["medications", 0, "status"], "taking"), "medications[0].status"),
    (_mutate(["medications", 0], {"status": "active"}), "medications[0]"),
    (_mutate(["medications"], "oxycodone"), "medications"),
    (dict(GOOD, as_of="yesterday"), "as_of"),
    (dict(GOOD, renal={"egfr": -3}), "renal.egfr"),
    (dict(GOOD, procedures=[{"name": "x", "date": "13/01/2026"}]), "procedures[0].date"),
    (dict(GOOD, unexpected=True), "unexpected"),
])
def test_bad_input_is_a_problem_naming_the_field(client, body, field):
    r = post(client, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["title"]
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["detail"].startswith(problem["errors"][0]["field"])


def test_malformed_json_is_400(client):
    r = client.post("/v1/evaluations", content=b'{"ldn": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_body_over_the_limit_is_413(client, app):
    limit = app.state.settings.max_body_bytes
    big = {"medications": [{"name": "x" * 200, "status": "active"}] * (limit // 200 + 10)}
    r = post(client, big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


def test_unknown_route_is_problem_json(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_the_response_of_every_rule_case_meets_the_committed_schema(evaluator):
    """Every rule case's answer, as the endpoint writes it, against schemas/evaluation-response.schema.json."""
    import json

    import jsonschema

    from service.core.context import PatientContext

    from ..conftest import ROOT

    from ..conftest import FIXED_TODAY
    from ..knowledge.test_rule_cases import CASES
    extra = {"medications": [{"name": "Ünknown tincture “x”", "status": "active", "codes": [{"system": "ndc",
                                                                                              "code": "0000-1"}]},
                             {"codes": [{"system": "rxnorm", "code": "999999999"}]}]}
    schema = json.loads((ROOT / "schemas" / "evaluation-response.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    bodies = [case["context"] for _, _, case in CASES] + [extra]
    advisories = 0
    for body in bodies:
        decision = evaluator.evaluate(PatientContext.model_validate(body), FIXED_TODAY)
        advisories += len(decision.advisories)
        validator.validate(json.loads(EvaluationResponse.of("e-1", decision).model_dump_json()))
    assert advisories > len(CASES) // 2                     # the cases do fire: advisories were compared


def test_the_endpoint_sends_a_valid_evaluation_response(client):
    body = {"as_of": "2026-03-01", "ldn": {"status": "active", "dose_mg": 4.5}, "medications": [OXY, {"name": "zz"}]}
    r = post(client, body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    parsed = EvaluationResponse.model_validate_json(r.content)
    assert parsed.advisories and parsed.unrecognized_medications[0].name == "zz"
    assert parsed.model_dump_json().encode() == r.content
