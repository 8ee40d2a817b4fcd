"""The codes a pharmacy system reads for one advisory, taken from its rule file's `coding` block.

No mapping table lives here. Each rule file carries its NCPDP DUR Reason for Service code, clinical significance
and HL7 v3 ActCode detected-issue code (and optionally a suggested NCPDP Professional Service code and v3
mitigation), plus `alternates`: overrides that apply when the advisory has a given severity or when a given piece
of evidence is present (for example DL, drug-lab, when the renal finding is an eGFR; MC, drug-disease, when it is
a CKD stage or dialysis). Every matching alternate applies, in order.

The displays come from the `oneOf` lists in schemas/rule.schema.json `$defs`: the same lists that validate every
rule file at start-up, so a code in a rule is known with its display or the knowledge base does not load.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# coding field -> the $defs entry of rule.schema.json that lists its codes and displays
VOCABULARIES = {"ncpdp_reason_for_service": "ncpdp_reason_for_service",
                "ncpdp_clinical_significance": "ncpdp_clinical_significance",
                "professional_service": "ncpdp_professional_service",
                "v3_act_code": "v3_detected_issue_code",
                "mitigation": "v3_mitigation_code"}
CODE_FIELDS = tuple(VOCABULARIES)


@dataclass(frozen=True)
class Vocabulary:
    displays: Mapping[str, Mapping[Any, str]]      # coding field -> code -> display

    def display(self, field: str, code: Any) -> str:
        return self.displays[field][code]


@functools.lru_cache(maxsize=8)
def load_vocabulary(rule_schema: Path) -> Vocabulary:
    defs = json.loads(Path(rule_schema).read_text(encoding="utf-8"))["$defs"]
    return Vocabulary({field: {item["const"]: item["title"] for item in defs[name]["oneOf"]}
                       for field, name in VOCABULARIES.items()})


@functools.lru_cache(maxsize=8)
def vocabulary_in(schemas_dir: Path) -> Vocabulary:
    """The vocabulary of a schemas directory's rule.schema.json, cached by the directory: the settings' own Path
    object, whose hash is computed once (building and hashing the file's path cost more than the lookup)."""
    return load_vocabulary(schemas_dir / "rule.schema.json")


@dataclass(frozen=True)
class IssueCoding:
    reason_for_service: str
    clinical_significance: int
    professional_service: str | None
    v3_act_code: str
    mitigation: str | None


def evidence_value(evidence: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of an advisory's evidence, or None."""
    node: Any = evidence
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def resolve(coding: Mapping[str, Any], severity: str, evidence: Mapping[str, Any]) -> IssueCoding:
    """The codes for an advisory of this rule, with this severity and this evidence."""
    codes = {field: coding.get(field) for field in CODE_FIELDS}
    for alternate in coding.get("alternates") or ():
        if "when_severity" in alternate and alternate["when_severity"] != severity:
            continue
        if "when_evidence" in alternate and evidence_value(evidence, alternate["when_evidence"]) is None:
            continue
        codes.update({field: alternate[field] for field in CODE_FIELDS if field in alternate})
    return IssueCoding(reason_for_service=codes["ncpdp_reason_for_service"],
                       clinical_significance=codes["ncpdp_clinical_significance"],
                       professional_service=codes["professional_service"], v3_act_code=codes["v3_act_code"],
                       mitigation=codes["mitigation"])
