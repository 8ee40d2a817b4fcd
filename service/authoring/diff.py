"""Two knowledge directories compared rule by rule: added, removed, changed (what and how), old and new versions.

Rule files are compared as parsed YAML (comments and layout do not count) through the lock's content hash
(service/knowledge/lock.py): a rule whose content changed while its version did not is the error this reports.
The files beside the rules (knowledge.yaml, sources, terminology) are compared byte for byte and listed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..knowledge.errors import KnowledgeError
from ..knowledge.lock import HASH_EXCLUDED, LOCK_FILE, content_hash

# What a reviewer asks about a change, by the rule file's top-level key (anything else: "other"); an escalation's
# fields by their own key.
ESCALATION_ASPECTS = {"when": "condition", "severity": "severity", "summary": "texts", "action": "texts"}
ASPECTS = {"when": "condition", "escalations": "condition", "severity": "severity", "status": "status",
           "parameters": "parameters", "title": "texts", "description": "texts", "advisory": "texts",
           "citations": "citations", "coding": "coding", "requires": "inputs", "evidence": "evidence",
           "suggestions": "suggestions", "tests": "tests (not content)"}


@dataclass
class RuleChange:
    rule_id: str
    old_version: str | None
    new_version: str | None
    changes: list[tuple[str, str]] = field(default_factory=list)   # (aspect, "path: old -> new")
    content_changed: bool = False

    @property
    def kind(self) -> str:
        return "added" if self.old_version is None else "removed" if self.new_version is None else "changed"

    @property
    def unversioned(self) -> bool:
        """Content changed, version did not: the error."""
        return self.kind == "changed" and self.content_changed and self.old_version == self.new_version


def read_rule_docs(rules_dir: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """rule id -> (file name, parsed document) for every rule file (parsed only: a diff also reads rules that
    would not validate)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted((rules_dir / "ldn").glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise KnowledgeError(str(path), f"not readable as YAML: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise KnowledgeError(str(path), "a rule file must be a mapping with an id", field="id")
        out[doc["id"]] = (path.name, doc)
    if not out:
        raise KnowledgeError(str(rules_dir / "ldn"), "no rule files (*.yaml) found")
    return out


def _show(value: Any) -> str:
    text = "(none)" if value is None else yaml.safe_dump(value, default_flow_style=True, allow_unicode=True,
                                                          width=10_000).strip()
    text = text.removesuffix("\n...").strip()
    return text if len(text) <= 160 else text[:157] + "..."


def leaf_changes(old: Any, new: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, old, new) for every differing leaf; lists of different length compare whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            yield from leaf_changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            yield from leaf_changes(a, b, f"{path}[{i}]")
    elif old != new:
        yield path, old, new


def compare_rule(rule_id: str, old: dict[str, Any], new: dict[str, Any]) -> RuleChange | None:
    change = RuleChange(rule_id, str(old.get("version")), str(new.get("version")))
    change.content_changed = content_hash(old) != content_hash(new)
    for path, a, b in leaf_changes(old, new, ""):
        top = path.split(".")[0].split("[")[0]
        if top in HASH_EXCLUDED and top != "tests":
            continue
        aspect = ASPECTS.get(top, "other")
        if top == "escalations" and "." in path:
            aspect = ESCALATION_ASPECTS.get(path.split(".")[1], "other")
        change.changes.append((aspect, f"{path}: {_show(a)} -> {_show(b)}"))
    return change if change.changes or change.old_version != change.new_version else None


def _other_files(old_dir: Path, new_dir: Path) -> list[str]:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.parent != root / "ldn" and p.name != LOCK_FILE}
    a, b = files(old_dir), files(new_dir)
    return [f"{name}: {'added' if name not in a else 'removed' if name not in b else 'changed'}"
            for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


def compare(old_dir: Path, new_dir: Path) -> tuple[list[RuleChange], list[str]]:
    old, new = read_rule_docs(old_dir), read_rule_docs(new_dir)
    changes = []
    for rule_id in sorted(set(old) | set(new)):
        if rule_id not in new:
            changes.append(RuleChange(rule_id, str(old[rule_id][1].get("version")), None))
        elif rule_id not in old:
            changes.append(RuleChange(rule_id, None, str(new[rule_id][1].get("version"))))
        else:
            change = compare_rule(rule_id, old[rule_id][1], new[rule_id][1])
            if change is not None:
                changes.append(change)
    return changes, _other_files(old_dir, new_dir)


def render(changes: list[RuleChange], other: list[str]) -> str:
    lines = []
    for c in changes:
        if c.kind == "added":
            lines.append(f"added   {c.rule_id} {c.new_version}")
        elif c.kind == "removed":
            lines.append(f"removed {c.rule_id} {c.old_version}")
        else:
            flag = "  ERROR: content changed without a version change" if c.unversioned else ""
            lines.append(f"changed {c.rule_id} {c.old_version} -> {c.new_version}{flag}")
            lines += [f"    {aspect}: {text}" for aspect, text in c.changes]
    lines += [f"other   {line}" for line in other]
    count = {k: sum(c.kind == k for c in changes) for k in ("added", "removed", "changed")}
    bad = sum(c.unversioned for c in changes)
    lines.append(f"{count['added']} added, {count['removed']} removed, {count['changed']} changed"
                 f" ({bad} without a version change), {len(other)} other files changed")
    return "\n".join(lines)
