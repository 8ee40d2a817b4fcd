"""The codes a pharmacy system reads for one advisory, taken from its rule file's `coding` block.

No mapping table lives here. Each rule file carries its NCPDP DUR Reason for Service code, clinical significance
and HL7 v3 ActCode detected-issue code (and optionally a suggested NCPDP Professional Service code and v3
mitigation), plus `alternates`: overrides that apply when the advisory has a given severity or when a given piece
of evidence is present (for example DL, drug-lab, when the renal finding is an eGFR; MC, drug-disease, when it is
a CKD stage or dialysis). Every matching alternate applies, in order.

The displays are knowledge (service/knowledge/vocabularies.py): the `oneOf` lists of schemas/rule.schema.json that
validate every rule file at start-up, so a code in a rule is known with its display or the knowledge base does not
load.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..knowledge.vocabularies import CODING_VOCABULARIES

CODE_FIELDS = tuple(CODING_VOCABULARIES)


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
