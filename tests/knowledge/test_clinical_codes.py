"""The clinical codes the FHIR mapping reads are knowledge (rules/vocabularies/clinical-codes.yaml): a change there
changes what the service reads and its prefetch queries, and changes the knowledge version; a malformed file stops
start-up naming the file and the entry."""
from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml

from service.cds_hooks import fhir
from service.cds_hooks.fhir_mapping import build_context, read_drafts
from service.cds_hooks.services import services_for
from service.knowledge.base import load_knowledge
from service.knowledge.errors import KnowledgeError

from ..cds_hooks.support import egfr
from ..conftest import ROOT

CODES = "vocabularies/clinical-codes.yaml"
NEW_LOINC = "50044-7"      # eGFR among females (MDRD): not in the shipped list


def _copy(tmp_path, edit=None):
    """A copy of rules/ whose clinical-codes file was changed by edit(doc) (rewritten without its comments)."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    if edit is None:
        return rules
    doc = yaml.safe_load((rules / CODES).read_text())
    edit(doc)
    (rules / CODES).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return rules


def _egfr_read(kb, observation) -> float | None:
    drafts = read_drafts("patient-view", {}, fhir.ResourceIndex(), kb.terminology, kb.clinical_codes,
                         dt.date(2026, 3, 1))
    mapped = build_context(drafts, {"medicationRequests": [], "egfr": [observation], "conditions": []},
                           fhir.ResourceIndex(), kb.terminology, kb.clinical_codes)
    return mapped.context.renal.egfr if mapped.context.renal else None


def test_the_shipped_file_keeps_its_policy_and_sources(kb):
    doc = yaml.safe_load((ROOT / "rules" / CODES).read_text())
    assert "a code in doubt is left out" in doc["policy"]
    assert "98979-8" in kb.clinical_codes.egfr_loinc
    assert kb.clinical_codes.icd10_renal["N18.32"] == ("G3b", False)


def test_an_added_egfr_code_is_read_queried_and_versioned(tmp_path, kb):
    assert _egfr_read(kb, egfr(40, code=NEW_LOINC)) is None          # the shipped codes do not know it
    rules = _copy(tmp_path)
    text = (rules / CODES).read_text()
    assert text.count('- "98979-8"') == 1
    (rules / CODES).write_text(text.replace('- "98979-8"', f'- "98979-8"\n    - "{NEW_LOINC}"'))   # one line added
    changed = load_knowledge(rules)
    assert _egfr_read(changed, egfr(40, code=NEW_LOINC)) == 40
    assert changed.version != kb.version
    query = services_for(changed.clinical_codes)["ldn-patient-view"].prefetch["egfr"]
    assert f"http://loinc.org|{NEW_LOINC}" in query
    assert NEW_LOINC not in services_for(kb.clinical_codes)["ldn-patient-view"].prefetch["egfr"]


def test_an_unchanged_copy_has_the_same_version(tmp_path, kb):
    assert load_knowledge(_copy(tmp_path)).version == kb.version


@pytest.mark.parametrize("edit,field,words", [
    (lambda d: d["egfr"].update(loinc=[33914]), "egfr.loinc[0]", "is not of type 'string'"),
    (lambda d: d["egfr"].pop("source"), "egfr", "'source' is a required property"),
    (lambda d: d["renal_conditions"]["icd10"]["codes"]["N18.4"].update(stage="G7"),
     "renal_conditions.icd10.codes.N18.4.stage", "'G7' is not in ckd_stage_order"),
    (lambda d: d.update(ckd_stage_order=["G1", "G2"]),
     "renal_conditions.icd10.codes.N18.3.stage", "'G3a' is not in ckd_stage_order"),
    (lambda d: d["renal_conditions"]["snomed"]["codes"]["105502003"].update(dialysis=False),
     "renal_conditions.snomed.codes.105502003", "should not be valid"),
    (lambda d: d["surgery"]["patterns"].append("(unclosed"), "surgery.patterns[6]", "not a regular expression"),
    (lambda d: d["surgery"].pop("urgent_priorities"), "surgery", "'urgent_priorities' is a required property"),
    (lambda d: d["event_timing"]["times"].update(HS=None), "event_timing.times.HS", "is not of type 'string'"),
])
def test_a_malformed_codes_file_stops_load_naming_the_file_and_field(tmp_path, edit, field, words):
    rules = _copy(tmp_path, edit)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(rules)
    assert info.value.file == str(rules / CODES)
    assert info.value.field == field and words in info.value.message, str(info.value)


def test_an_unreadable_codes_file_stops_load_naming_it(tmp_path):
    rules = _copy(tmp_path)
    (rules / CODES).write_text("egfr: [unclosed\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(rules)
    assert info.value.file == str(rules / CODES) and "not readable as YAML" in info.value.message
