"""The knowledge base: citations are verbatim, copies match shared/, broken rule files stop start-up by name,
and a new rule is a new file (no Python change)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from service.core.context import PatientContext
from service.core.decision import Evaluator
from service.core.scope import counterparts
from service.knowledge import lock
from service.knowledge.base import load_knowledge
from service.knowledge.errors import KnowledgeError
from service.knowledge.sources import fold_whitespace

from ..conftest import ROOT, SHARED


def test_every_citation_is_verbatim_in_the_shared_source(kb):
    # Compared with ../shared/sources itself, not our copy: a quote that is not in its source fails the build.
    for rule in kb.rules.values():
        for c in rule.citations:
            text = (SHARED / "sources" / kb.sources[c.source_id].file).read_text(encoding="utf-8")
            assert fold_whitespace(c.quote) in fold_whitespace(text), (rule.id, c.quote)


def test_source_copies_are_byte_identical_to_shared(kb):
    for source in kb.sources.values():
        assert (ROOT / "rules/sources" / source.file).read_bytes() == (SHARED / "sources" / source.file).read_bytes()
    assert {s.file for s in kb.sources.values()} == {p.name for p in (SHARED / "sources").glob("*.txt")}


def test_registry_metadata_matches_the_shared_readme(kb):
    readme = (SHARED / "sources/README.md").read_text()
    assert kb.sources["ldn-vardeman-2023"].author == "Megan Vardeman, PA-C"
    assert "Megan Vardeman, PA-C" in readme and "Apr 17, 2023" in readme
    assert kb.sources["ldn-vardeman-2023"].date == "2023-04-17"
    for source in kb.sources.values():
        if source.title_in_text:
            assert source.title in source.text, source.id


def test_knowledge_version_is_a_content_hash(tmp_path, kb):
    copy = _copy_rules(tmp_path)
    assert load_knowledge(copy).version == kb.version
    path = copy / "ldn" / "ldn-renal-impairment.yaml"
    version = yaml.safe_load(path.read_text())["version"]
    path.write_text(path.read_text().replace("value: 60", "value: 45").replace(f"version: {version}", "version: 9.0.0"))
    relock(copy)
    assert load_knowledge(copy).version != kb.version


def relock(rules: Path) -> None:
    """What `ldn-rules lock` does after a rule author gave a changed rule its new version."""
    path = rules / lock.LOCK_FILE
    new, _, refused = lock.updated(lock.read_lock(path), load_knowledge(rules, check_lock=False).rules.values(), path)
    assert not refused
    lock.write_lock(path, new)


def _copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    return target


def _break(tmp_path: Path, rule_id: str, edit) -> KnowledgeError:
    rules = _copy_rules(tmp_path)
    path = rules / "ldn" / f"{rule_id}.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(rules)
    return info.value


@pytest.mark.parametrize("counterpart,ok", [("opioid", True), (["opioid", "naltrexone"], True), (["naltrexone"], True),
                                            (["opioid", "benzodiazepine"], False), ([], False),
                                            (["opioid", "opioid"], False), ("ldn", False)])
def test_counterpart_is_one_class_or_a_list_of_classes(tmp_path, counterpart, ok):
    rules = _copy_rules(tmp_path)
    path = rules / "ldn" / "ldn-opioid-coadministration.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["coding"]["counterpart"] = counterpart
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    if ok:   # (the lock is not what this is about: tests/authoring/ test it)
        rule = load_knowledge(rules, check_lock=False).rules["ldn-opioid-coadministration"]
        assert counterparts(rule) == frozenset([counterpart] if isinstance(counterpart, str) else counterpart)
        return
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(rules)
    assert info.value.field.startswith("coding.counterpart"), str(info.value)


@pytest.mark.parametrize("edit,field,words", [
    (lambda d: d.pop("severity"), "(top level)", "severity"),
    (lambda d: d.update(severity="urgent"), "severity", "urgent"),
    (lambda d: d["when"]["all"][1].update(fact="medications.opioid_total"), "when.all[1].fact", "unknown fact"),
    (lambda d: d["when"]["all"][1].update(gt="many"), "when.all[1].gt", "not a valid value"),
    (lambda d: d["when"]["all"][0].update({"is": 3}), "when.all[0].is", "not a valid value"),
    (lambda d: d["when"]["all"][1].update(gt={"param": "nope"}), "when.all[1].gt", "unknown parameter"),
    (lambda d: d["requires"].append("genome"), "requires[2]", "unknown input"),
    (lambda d: d["citations"][0].update(quote="LDN should always be combined with opioids"), "citations[0].quote",
     "not found verbatim"),
    (lambda d: d["citations"][0].update(source="wikipedia"), "citations[0].source", "unknown source"),
    (lambda d: d["advisory"].update(summary="Opioids: {medications.opioid_names}"), "advisory.summary", "placeholder"),
    (lambda d: d.update(tests=d["tests"][:1]), "tests", "too short"),
    (lambda d: d.update(colour="red"), "(top level)", "colour"),
    (lambda d: d.update(suggestions=[{"kind": "hold-before-procedure", "from": "nope", "latest": "nope"}]),
     "suggestions[0]", "unknown parameter"),
    (lambda d: d["history"].insert(0, {"version": "1.1.0", "date": "2026-12-01", "change": "Not released."}),
     "history[0]", "history names version 1.1.0, above the rule's version 1.0.0"),
    (lambda d: d["history"].append({"version": "1.1.0", "date": "2026-12-01", "change": "Out of order."}),
     "history[1]", "newest first"),
    (lambda d: d["history"].append(dict(d["history"][0])), "history", "listed twice"),
    (lambda d: d["history"][0].pop("change"), "history[0]", "'change' is a required property"),
])
def test_a_broken_rule_file_names_file_rule_and_field(tmp_path, edit, field, words):
    err = _break(tmp_path, "ldn-opioid-coadministration", edit)
    assert err.file.endswith("ldn-opioid-coadministration.yaml")
    assert err.rule == "ldn-opioid-coadministration"
    assert err.field == field, str(err)
    assert words in str(err)


def test_invalid_yaml_names_the_file(tmp_path):
    rules = _copy_rules(tmp_path)
    (rules / "ldn" / "ldn-bedtime-dosing.yaml").write_text("id: [unclosed\n")
    with pytest.raises(KnowledgeError, match="ldn-bedtime-dosing.yaml: not readable as YAML"):
        load_knowledge(rules)


def test_start_up_stops_on_a_broken_rule_file(tmp_path):
    import subprocess
    import sys
    rules = _copy_rules(tmp_path)
    path = rules / "ldn" / "ldn-renal-impairment.yaml"
    path.write_text(path.read_text().replace("fact: renal.egfr", "fact: renal.gfr"))
    proc = subprocess.run([sys.executable, "-m", "service.serve"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"RULES_DIR": str(rules), "PORT": "0", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "ldn-renal-impairment.yaml, rule ldn-renal-impairment, field when.all[1].any[0].fact" in proc.stderr


NEW_RULE = """
id: ldn-ckd-g5-dialysis-review
version: 0.1.0
title: LDN in a patient on dialysis (local review rule)
status: active
severity: warning
released: 2026-11-22
revised: 2026-11-22
requires: [ldn, renal]
when:
  all:
    - {fact: ldn.in_use, is: true}
    - {fact: renal.dialysis, is: true}
    - {fact: ldn.dose_mg, gte: {param: review_above_mg}}
parameters:
  review_above_mg: {value: 3, unit: mg, description: Local review threshold.}
evidence: [renal]
advisory:
  summary: "LDN {ldn.dose_mg} mg on dialysis: local pharmacist review."
  detail: "Naltrexone is mostly renally excreted."
  action: "Ask the renal pharmacist to review."
citations:
  - source: ldn-clinical-summary
    quote: "Primarily excreted by the kidneys (53-79% of the dose)"
coding:
  ncpdp_reason_for_service: MC
  ncpdp_clinical_significance: 2
  v3_act_code: DOSECOND
tests:
  - {name: fires, context: {ldn: {status: active, dose_mg: 4.5}, renal: {dialysis: true}}, expect: fires}
  - {name: silent, context: {ldn: {status: active, dose_mg: 1.5}, renal: {dialysis: true}}, expect: silent}
"""


def test_a_new_rule_is_a_new_file(tmp_path):
    rules = _copy_rules(tmp_path)
    (rules / "ldn" / "ldn-ckd-g5-dialysis-review.yaml").write_text(NEW_RULE)
    relock(rules)
    evaluator = Evaluator(load_knowledge(rules))   # builds one more durable host: acceptable once
    ctx = PatientContext.model_validate({"ldn": {"status": "active", "dose_mg": 4.5}, "renal": {"dialysis": True}})
    fired = {a.rule_id: a for a in evaluator.evaluate(ctx).advisories}
    assert fired["ldn-ckd-g5-dialysis-review"].summary == "LDN 4.5 mg on dialysis: local pharmacist review."
    assert "ldn-renal-impairment" in fired
    quiet = PatientContext.model_validate({"ldn": {"status": "active", "dose_mg": 4.5}, "renal": {"dialysis": False}})
    assert "ldn-ckd-g5-dialysis-review" not in {a.rule_id for a in evaluator.evaluate(quiet).advisories}


def test_draft_rules_are_listed_but_not_run(tmp_path):
    rules = _copy_rules(tmp_path)
    (rules / "ldn" / "ldn-ckd-g5-dialysis-review.yaml").write_text(NEW_RULE.replace("status: active", "status: draft"))
    relock(rules)
    kb = load_knowledge(rules)
    assert "ldn-ckd-g5-dialysis-review" in kb.rules
    assert "ldn-ckd-g5-dialysis-review" not in {r.id for r in kb.active_rules}


def test_a_rules_history_is_not_locked_content(kb):
    """history records the versions (like released and revised): rewording it is no new version of the rule."""
    import copy
    rule = kb.rules["ldn-perioperative-hold"]
    doc = copy.deepcopy(rule.raw)
    doc["history"][0]["change"] = "Reworded."
    assert lock.content_hash(doc) == lock.content_hash(rule.raw)
    doc["parameters"]["hold_days_max"]["value"] = 4
    assert lock.content_hash(doc) != lock.content_hash(rule.raw)
