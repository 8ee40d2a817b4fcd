"""The version lock: each rule's content hash per version, committed beside the rules (rules/versions.lock.yaml).

A rule whose content changed while its version did not is refused (by start-up and `ldn-rules validate`), and so is
a version that is not locked yet: a rule author bumps the version and runs `ldn-rules lock`, which records the new
version and never rewrites the hash of one already locked.

The content hash is canonical: the parsed YAML (so comments, quoting and layout do not count), without the fields
that do not change an answer or the rule's meaning (HASH_EXCLUDED), as sorted-key JSON.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import KnowledgeError

LOCK_FILE = "versions.lock.yaml"
# version: what is being locked. released/revised: dates about the version. history: what each version changed
# (the record of versions: documentation, like the dates). tests: the rule's own cases (they
# check the rule, they are not part of it; a broken case fails `ldn-rules test` and start-up instead).
HASH_EXCLUDED = frozenset({"version", "released", "revised", "history", "tests"})
_HEADER = ("# Rule id -> version -> content hash (service/knowledge/lock.py). Written by `ldn-rules lock`;\n"
           "# a rule whose content changed without a new version is refused at start-up.\n")

Lock = dict[str, dict[str, str]]


def content_hash(doc: dict[str, Any]) -> str:
    content = {k: v for k, v in doc.items() if k not in HASH_EXCLUDED}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_lock(path: Path) -> Lock:
    if not path.exists():
        raise KnowledgeError(str(path), "the version lock is missing: run `ldn-rules lock`")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(str(path), f"not readable as YAML: {exc}") from exc
    ok = isinstance(doc, dict) and all(
        isinstance(versions, dict) and all(isinstance(v, str) and isinstance(h, str) for v, h in versions.items())
        for versions in doc.values())
    if not ok:
        raise KnowledgeError(str(path), "must map each rule id to {version: content hash}")
    return {str(rule_id): dict(versions) for rule_id, versions in doc.items()}


def lock_problem(lock: Lock, file: str, rule_id: str, version: str, digest: str) -> KnowledgeError | None:
    """Why this rule version does not match the lock (None: it does)."""
    locked = lock.get(rule_id, {}).get(version)
    if locked is None:
        return KnowledgeError(file, f"version {version} is not in {LOCK_FILE}: run `ldn-rules lock` once the new "
                              "version is reviewed", rule=rule_id, field="version")
    if locked != digest:
        return KnowledgeError(file, f"content changed but the version did not: {version} is locked as {locked}, "
                              f"the file now hashes to {digest}; give the rule a new version, then run "
                              "`ldn-rules lock`", rule=rule_id, field="version")
    return None


def check(lock_path: Path, rules: Iterable[Any]) -> list[KnowledgeError]:
    """Lock problems of loaded rules (objects with .id, .version, .raw, .file)."""
    lock = read_lock(lock_path)
    out = []
    for rule in rules:
        problem = lock_problem(lock, _rule_file(lock_path, rule), rule.id, rule.version, content_hash(rule.raw))
        if problem is not None:
            out.append(problem)
    return out


def updated(lock: Lock, rules: Iterable[Any], lock_path: Path) -> tuple[Lock, list[str], list[KnowledgeError]]:
    """The lock with every new rule version added; the versions added; and the refusals (a locked version whose
    content changed: the lock is never rewritten for it)."""
    new = {rule_id: dict(versions) for rule_id, versions in lock.items()}
    added, refused = [], []
    for rule in rules:
        digest = content_hash(rule.raw)
        locked = new.get(rule.id, {}).get(rule.version)
        if locked is None:
            new.setdefault(rule.id, {})[rule.version] = digest
            added.append(f"{rule.id} {rule.version}")
        elif locked != digest:
            refused.append(lock_problem(lock, _rule_file(lock_path, rule), rule.id, rule.version, digest))
    return new, added, refused


def _rule_file(lock_path: Path, rule: Any) -> str:
    return str(lock_path.parent / "ldn" / rule.file)


def write_lock(path: Path, lock: Lock) -> None:
    body = yaml.safe_dump({k: lock[k] for k in sorted(lock)}, sort_keys=False, allow_unicode=True)
    path.write_text(_HEADER + body, encoding="utf-8")
