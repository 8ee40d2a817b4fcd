"""The knowledge base: sources, terminology and rules loaded together, with one content-hash version."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import lock
from .conditions import FactType, vocabulary_from_schema
from .errors import KnowledgeError
from .rules import Rule, load_rules
from .sources import Source, load_sources
from .terminology import Terminology, load_terminology
from .vocabularies import ClinicalCodes, CodingDisplays, coding_displays, load_clinical_codes

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class KnowledgeBase:
    meta: dict[str, Any]                 # rules/knowledge.yaml
    inputs: dict[str, dict[str, str]]    # input name -> label, short, data_element
    sources: dict[str, Source]
    rules: dict[str, Rule]               # every rule file, any status, by id
    terminology: Terminology
    vocabulary: dict[str, FactType]
    evidence_keys: dict[str, str]
    coding_displays: CodingDisplays      # displays of the NCPDP / HL7 v3 codes the rules use
    clinical_codes: ClinicalCodes        # what the FHIR mapping reads as eGFR, CKD, dialysis, surgery, timing
    version: str                         # content hash of everything that can change an answer

    @property
    def active_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.active]

    def data_elements(self, rule: Rule) -> list[tuple[str, str, bool]]:
        """The patient data a rule uses (HTI-1): (input, data element, required), in knowledge.yaml's order.
        A fact belongs to the input of the same name (ldn.dose_mg) or else to its top-level input (ldn.in_use)."""
        used = set(rule.requires) | {f if f in self.inputs else f.split(".")[0] for f in rule.facts_used()}
        return [(i, self.inputs[i]["data_element"], i in rule.requires) for i in self.inputs if i in used]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KnowledgeError(str(path), f"cannot read JSON: {exc}") from exc


def _version(parts: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(parts):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return "sha256:" + digest.hexdigest()[:16]


def load_knowledge(rules_dir: Path | None = None, schemas_dir: Path | None = None, *,
                   check_lock: bool = True) -> KnowledgeBase:
    """The knowledge base, or KnowledgeError naming the first problem. `check_lock=False` (a rule author's
    trial runs: `ldn-rules test`, `explain`, `replay`) loads rules whose version is not locked yet."""
    kb = _load(rules_dir, schemas_dir, check_lock, problems=None)
    assert kb is not None           # without a problems list, every problem raises
    return kb


def check_knowledge(rules_dir: Path | None = None,
                    schemas_dir: Path | None = None) -> tuple[KnowledgeBase | None, list[KnowledgeError]]:
    """Every problem the loader would stop on (each rule file's, the lock's, a shared file's), and the knowledge
    base when there is none."""
    problems: list[KnowledgeError] = []
    try:
        kb = _load(rules_dir, schemas_dir, True, problems=problems)
    except KnowledgeError as exc:     # a shared file (knowledge.yaml, sources, terminology, vocabularies, schemas)
        return None, [exc]
    return kb, problems


def _load(rules_dir: Path | None, schemas_dir: Path | None, check_lock: bool,
          problems: list[KnowledgeError] | None) -> KnowledgeBase | None:
    rules_dir = rules_dir or PROJECT_ROOT / "rules"
    schemas_dir = schemas_dir or PROJECT_ROOT / "schemas"
    meta_path = rules_dir / "knowledge.yaml"
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(str(meta_path), f"cannot read: {exc}") from exc
    inputs = meta.get("inputs") if isinstance(meta, dict) else None
    if not isinstance(inputs, dict) or not inputs:
        raise KnowledgeError(str(meta_path), "missing inputs", field="inputs")
    fact_schema = _read_json(schemas_dir / "facts.schema.json")
    vocabulary = vocabulary_from_schema(fact_schema)
    evidence_keys = dict(fact_schema.get("x-evidence") or {})
    sources = load_sources(rules_dir / "sources")
    terminology = load_terminology(rules_dir / "terminology")
    clinical_codes = load_clinical_codes(rules_dir / "vocabularies",
                                         _read_json(schemas_dir / "clinical-codes.schema.json"))
    rule_schema = _read_json(schemas_dir / "rule.schema.json")
    rules = load_rules(rules_dir / "ldn", rule_schema, problems, sources=sources,
                       inputs=inputs, vocabulary=vocabulary, evidence_keys=set(evidence_keys))
    if check_lock:
        found = lock.check(rules_dir / lock.LOCK_FILE, rules.values())
        if found and problems is None:
            raise found[0]
        if problems is not None:
            problems.extend(found)
    if problems:
        return None
    parts = [(f"ldn/{r.file}", (rules_dir / "ldn" / r.file).read_bytes()) for r in rules.values()]
    parts += [("knowledge.yaml", meta_path.read_bytes()), ("facts.schema.json", (schemas_dir / "facts.schema.json").read_bytes()),
              ("rule.schema.json", (schemas_dir / "rule.schema.json").read_bytes()),
              ("terminology", terminology.content), ("vocabularies/clinical-codes.yaml", clinical_codes.content)]
    parts += [(f"sources/{s.file}", s.text.encode()) for s in sources.values()]
    return KnowledgeBase(meta=meta, inputs=inputs, sources=sources, rules=rules, terminology=terminology,
                         vocabulary=vocabulary, evidence_keys=evidence_keys, coding_displays=coding_displays(rule_schema),
                         clinical_codes=clinical_codes, version=_version(parts))
