"""Code vocabularies that change what the service says: the NCPDP DUR and HL7 v3 ActCode displays of the codes
the rule files use. Loaded with the knowledge base, so they are part of its version hash."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
