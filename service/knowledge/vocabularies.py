"""Code vocabularies that change what the service says or reads: the NCPDP DUR and HL7 v3 ActCode displays of the
codes the rule files use, and the clinical codes the FHIR mapping recognises (rules/vocabularies/). Loaded with the
knowledge base, so they are part of its version hash."""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from .errors import KnowledgeError, read_yaml

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# coding field -> the $defs entry of rule.schema.json that lists its codes and displays
CODING_VOCABULARIES = {"ncpdp_reason_for_service": "ncpdp_reason_for_service",
                       "ncpdp_clinical_significance": "ncpdp_clinical_significance",
                       "professional_service": "ncpdp_professional_service",
                       "v3_act_code": "v3_detected_issue_code",
                       "mitigation": "v3_mitigation_code"}


@dataclass(frozen=True)
class CodingDisplays:
    displays: Mapping[str, Mapping[Any, str]]      # coding field -> code -> display

    def display(self, field: str, code: Any) -> str:
        return self.displays[field][code]


def coding_displays(rule_schema: dict[str, Any]) -> CodingDisplays:
    """The displays of every code a rule's `coding:` block may use, from the rule schema's `$defs` lists."""
    defs = rule_schema["$defs"]
    return CodingDisplays({field: {item["const"]: item["title"] for item in defs[name]["oneOf"]}
                           for field, name in CODING_VOCABULARIES.items()})


CLINICAL_CODES_FILE = "clinical-codes.yaml"


@dataclass(frozen=True, eq=False)     # eq=False: hashed by identity, so caches can key on one loaded instance
class ClinicalCodes:
    """rules/vocabularies/clinical-codes.yaml: what the FHIR mapping reads as eGFR, CKD, dialysis and surgery."""
    egfr_loinc: tuple[str, ...]
    icd10_renal: Mapping[str, tuple[str | None, bool]]     # code as published -> (CKD stage, dialysis)
    snomed_renal: Mapping[str, tuple[str | None, bool]]
    ckd_stage_order: tuple[str, ...]
    surgical_procedure: str                                # SNOMED CT |Surgical procedure|
    appointment_emergency: str                             # HL7 v2 table 0276
    appointment_not_surgery: frozenset[str]
    urgent_priorities: frozenset[str]                      # ServiceRequest.priority
    surgery_patterns: tuple[str, ...]
    not_surgery_patterns: tuple[str, ...]
    event_timing: Mapping[str, str]                        # EventTiming code -> administration time
    content: bytes = field(repr=False)                     # the file's bytes, for the knowledge version

    @functools.cached_property
    def icd10_renal_undotted(self) -> dict[str, tuple[str | None, bool]]:
        """ICD-10 codes without their dots: records send both N18.4 and N184."""
        return {k.replace(".", ""): v for k, v in self.icd10_renal.items()}

    @functools.cached_property
    def surgery_regex(self) -> re.Pattern[str]:
        """Any of the surgery patterns: one search, not one per pattern."""
        return _any_of(self.surgery_patterns)

    @functools.cached_property
    def not_surgery_regex(self) -> re.Pattern[str]:
        return _any_of(self.not_surgery_patterns)


def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def _renal(doc: dict[str, Any], system: str, order: tuple[str, ...], name: str) -> dict[str, tuple[str | None, bool]]:
    out: dict[str, tuple[str | None, bool]] = {}
    for code, entry in doc["renal_conditions"][system]["codes"].items():
        if entry["stage"] is not None and entry["stage"] not in order:
            raise KnowledgeError(name, f"stage {entry['stage']!r} is not in ckd_stage_order",
                                 field=f"renal_conditions.{system}.codes.{code}.stage")
        out[code] = (entry["stage"], entry["dialysis"])
    return out


def _patterns(doc: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
    for i, pattern in enumerate(doc["surgery"][key]):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise KnowledgeError(name, f"not a regular expression: {exc}", field=f"surgery.{key}[{i}]") from exc
    return tuple(doc["surgery"][key])


def load_clinical_codes(directory: Path, schema: dict[str, Any]) -> ClinicalCodes:
    """The clinical codes, or KnowledgeError naming the file and the entry."""
    path = directory / CLINICAL_CODES_FILE
    name = str(path)
    data, doc = read_yaml(path)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise KnowledgeError(name, error.message, field=where or "(top level)")
    order = tuple(doc["ckd_stage_order"])
    surgery = doc["surgery"]
    return ClinicalCodes(
        egfr_loinc=tuple(doc["egfr"]["loinc"]), icd10_renal=_renal(doc, "icd10", order, name),
        snomed_renal=_renal(doc, "snomed", order, name), ckd_stage_order=order,
        surgical_procedure=surgery["snomed_surgical_procedure"]["code"],
        appointment_emergency=surgery["appointment_reasons"]["emergency"],
        appointment_not_surgery=frozenset(surgery["appointment_reasons"]["not_surgery"]),
        urgent_priorities=frozenset(surgery["urgent_priorities"]["values"]),
        surgery_patterns=_patterns(doc, "patterns", name),
        not_surgery_patterns=_patterns(doc, "not_surgery_patterns", name),
        event_timing=dict(doc["event_timing"]["times"]), content=data)
