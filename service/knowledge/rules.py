"""Rule files: load, validate (JSON Schema, vocabulary, citations, templates) and type them.

A broken rule file stops start-up with a KnowledgeError that names the file, the rule and the field.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from . import templates
from .conditions import ConditionError, FactType, facts_used, resolve
from .errors import KnowledgeError, read_yaml
from .sources import Source

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Citation:
    source_id: str
    title: str
    quote: str
    stance: str = "supports"
    note: str | None = None


@dataclass(frozen=True)
class Escalation:
    severity: str
    when: dict[str, Any]
    summary: str | None
    action: str | None


@dataclass(frozen=True)
class Rule:
    id: str
    version: str
    title: str
    status: str
    severity: str
    released: str
    revised: str
    description: str
    requires: tuple[str, ...]
    parameters: dict[str, dict[str, Any]]
    when: dict[str, Any]                     # resolved: parameters substituted
    escalations: tuple[Escalation, ...]
    evidence: tuple[str, ...]
    summary: str
    detail: str
    action: str
    citations: tuple[Citation, ...]
    coding: dict[str, Any]
    tests: tuple[dict[str, Any], ...]
    file: str
    raw: dict[str, Any] = field(repr=False)  # the file as written, for the catalogue
    sha256: str = ""
    history: tuple[dict[str, str], ...] = ()  # newest first: version, date, change (optional in rule files)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def param_values(self) -> dict[str, Any]:
        return {name: p["value"] for name, p in self.parameters.items()}

    def facts_used(self) -> set[str]:
        used = facts_used(self.when)
        for esc in self.escalations:
            used |= facts_used(esc.when)
        return used


def _schema_error_field(err: jsonschema.ValidationError) -> str:
    # The deepest, most specific error of a oneOf is the useful one for a reviewer.
    best = jsonschema.exceptions.best_match([err]) if err.context else err
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in best.absolute_path).lstrip(".")
    return path or "(top level)", best.message


def _check_template(text: str, rule_file: str, rule_id: str, where: str, params: dict[str, Any],
                    evidence: tuple[str, ...], vocabulary: dict[str, FactType]) -> None:
    for path, offset in templates.placeholders(text):
        for p in filter(None, (path, offset)):
            if p.isdigit() or p == "as_of" or p in vocabulary:
                continue
            head, _, rest = p.partition(".")
            if head == "param" and rest in params:
                continue
            if head == "evidence" and rest.split(".")[0] in evidence:
                continue
            raise KnowledgeError(rule_file, f"template placeholder {{{p}}} names nothing known "
                                 "(a fact, param.<name>, or evidence.<key> listed under evidence)",
                                 rule=rule_id, field=where)


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _check_history(doc: dict[str, Any], rule_file: str, rule_id: str) -> None:
    """A history, when there is one, lists released versions newest first, each once, none above the version in
    force (a bumped version may not have its entry yet: the rule page says so)."""
    versions = [h["version"] for h in doc.get("history") or ()]
    if len(set(versions)) != len(versions):
        raise KnowledgeError(rule_file, "a version is listed twice", rule=rule_id, field="history")
    for i, (newer, older) in enumerate(zip(versions, versions[1:])):
        if _semver(newer) < _semver(older):
            raise KnowledgeError(rule_file, "history must list versions newest first", rule=rule_id,
                                 field=f"history[{i + 1}]")
    if versions and _semver(versions[0]) > _semver(doc["version"]):
        raise KnowledgeError(rule_file, f"history names version {versions[0]}, above the rule's version "
                             f"{doc['version']}", rule=rule_id, field="history[0]")


def _read_rule_file(path: Path, schema: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its document, valid against schemas/rule.schema.json and named after its id."""
    name = str(path)
    data, doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise KnowledgeError(name, "a rule file must be a mapping")
    # YAML turns unquoted dates into date objects; the schema speaks JSON, so compare as text.
    for key in ("released", "revised"):
        if key in doc and not isinstance(doc[key], str):
            doc[key] = str(doc[key])
    for entry in doc.get("history") or ():
        if isinstance(entry, dict) and "date" in entry and not isinstance(entry["date"], str):
            entry["date"] = str(entry["date"])
    rule_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
                    .iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where, message = _schema_error_field(errors[0])
        raise KnowledgeError(name, message, rule=rule_id, field=where)
    if path.stem != rule_id:
        raise KnowledgeError(name, f"file must be named {rule_id}.yaml", rule=rule_id, field="id")
    _check_history(doc, name, rule_id)
    return data, doc


def _check_names(doc: dict[str, Any], name: str, inputs: dict[str, Any], evidence_keys: set[str]) -> None:
    """Required inputs and evidence keys are ones the knowledge base defines."""
    for i, req in enumerate(doc["requires"]):
        if req not in inputs:
            raise KnowledgeError(name, f"unknown input {req!r} (see rules/knowledge.yaml inputs)",
                                 rule=doc["id"], field=f"requires[{i}]")
    for i, key in enumerate(doc.get("evidence") or ()):
        if key not in evidence_keys:
            raise KnowledgeError(name, f"unknown evidence key {key!r}", rule=doc["id"], field=f"evidence[{i}]")


def _conditions(doc: dict[str, Any], name: str, params: dict[str, Any],
                vocabulary: dict[str, FactType]) -> tuple[dict[str, Any], tuple[Escalation, ...]]:
    """The condition and the escalations, resolved against the fact vocabulary and the parameters."""
    try:
        when = resolve(doc["when"], params, vocabulary, "when")
        escalations = tuple(
            Escalation(e["severity"], resolve(e["when"], params, vocabulary, f"escalations[{i}].when"),
                       e.get("summary"), e.get("action"))
            for i, e in enumerate(doc.get("escalations") or ()))
    except ConditionError as exc:
        raise KnowledgeError(name, str(exc), rule=doc["id"], field=exc.field) from exc
    for i, esc in enumerate(escalations):
        if SEVERITY_RANK[esc.severity] <= SEVERITY_RANK[doc["severity"]]:
            raise KnowledgeError(name, "an escalation must raise the severity", rule=doc["id"],
                                 field=f"escalations[{i}].severity")
    return when, escalations


def _check_texts(doc: dict[str, Any], name: str, params: dict[str, Any], vocabulary: dict[str, FactType]) -> None:
    texts = [("advisory.summary", doc["advisory"]["summary"]), ("advisory.detail", doc["advisory"]["detail"]),
             ("advisory.action", doc["advisory"]["action"])]
    texts += [(f"escalations[{i}].{k}", e[k]) for i, e in enumerate(doc.get("escalations") or ())
              for k in ("summary", "action") if k in e]
    for where, text in texts:
        _check_template(text, name, doc["id"], where, params, tuple(doc.get("evidence") or ()), vocabulary)


def _check_suggestions(doc: dict[str, Any], name: str, params: dict[str, Any]) -> None:
    for i, s in enumerate(doc.get("suggestions") or ()):
        names = [s.get("from"), s.get("latest"), (s.get("to_when_new_start") or {}).get("param")]
        to = s.get("to")
        if isinstance(to, dict):
            names += [to.get("param"), to.get("previous_plus")]
        for param_name in filter(None, names):
            if param_name not in params:
                raise KnowledgeError(name, f"unknown parameter {param_name!r}", rule=doc["id"],
                                     field=f"suggestions[{i}]")
        if s["kind"] == "remove-counterpart-draft" and not (doc.get("coding") or {}).get("counterpart"):
            raise KnowledgeError(name, "remove-counterpart-draft needs coding.counterpart", rule=doc["id"],
                                 field=f"suggestions[{i}]")


def _citations(doc: dict[str, Any], name: str, sources: dict[str, Source]) -> tuple[Citation, ...]:
    """Each quote found verbatim (whitespace folded) in its source."""
    citations = []
    for i, c in enumerate(doc["citations"]):
        source = sources.get(c["source"])
        if source is None:
            raise KnowledgeError(name, f"unknown source {c['source']!r}", rule=doc["id"],
                                 field=f"citations[{i}].source")
        if not source.contains(c["quote"]):
            raise KnowledgeError(name, f"quote not found verbatim in {source.file}", rule=doc["id"],
                                 field=f"citations[{i}].quote")
        citations.append(Citation(source.id, source.title, " ".join(c["quote"].split()),
                                  c.get("stance", "supports"), c.get("note")))
    return tuple(citations)


def load_rule(path: Path, schema: dict[str, Any], *, sources: dict[str, Source], inputs: dict[str, Any],
              vocabulary: dict[str, FactType], evidence_keys: set[str]) -> Rule:
    """One rule file, checked whole: a problem raises KnowledgeError naming the file, the rule and the field.
    Once the file is schema-valid every step runs, and the first problem of each later step rides along in the
    error's `.also` (`ldn-rules validate` lists them all: a bad quote and an unknown fact at once)."""
    name = str(path)
    data, doc = _read_rule_file(path, schema)
    params = {k: v["value"] for k, v in (doc.get("parameters") or {}).items()}
    problems: list[KnowledgeError] = []

    def step(check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except KnowledgeError as err:
            problems.append(err)
            return None
    step(_check_names, doc, name, inputs, evidence_keys)
    conditions = step(_conditions, doc, name, params, vocabulary)
    step(_check_texts, doc, name, params, vocabulary)
    step(_check_suggestions, doc, name, params)
    citations = step(_citations, doc, name, sources)
    if problems:
        problems[0].also = tuple(problems[1:])
        raise problems[0]
    when, escalations = conditions
    return Rule(
        id=doc["id"], version=doc["version"], title=doc["title"], status=doc["status"], severity=doc["severity"],
        released=doc["released"], revised=doc["revised"], description=" ".join(doc.get("description", "").split()),
        requires=tuple(doc["requires"]), parameters=dict(doc.get("parameters") or {}), when=when,
        escalations=escalations, evidence=tuple(doc.get("evidence") or ()), summary=doc["advisory"]["summary"],
        detail=doc["advisory"]["detail"], action=doc["advisory"]["action"], citations=citations,
        coding=dict(doc.get("coding") or {}), tests=tuple(doc["tests"]), file=path.name, raw=doc,
        sha256=hashlib.sha256(data).hexdigest(), history=tuple(doc.get("history") or ()),
    )


def load_rules(directory: Path, schema: dict[str, Any], problems: list[KnowledgeError] | None = None,
               **context: Any) -> dict[str, Rule]:
    """Every rule file of `directory`. The first problem raises; with a `problems` list, each file's problems are
    appended there instead and the other files are still loaded (`ldn-rules validate` lists them all)."""
    def fail(err: KnowledgeError) -> None:
        if problems is None:
            raise err
        problems.append(err)

    rules: dict[str, Rule] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            rule = load_rule(path, schema, **context)
        except KnowledgeError as err:
            for problem in (err, *err.also):
                fail(problem)
            continue
        if rule.id in rules:
            fail(KnowledgeError(str(path), "duplicate rule id", rule=rule.id, field="id"))
            continue
        rules[rule.id] = rule
    if not rules and not problems:
        fail(KnowledgeError(str(directory), "no rule files (*.yaml) found"))
    return rules
