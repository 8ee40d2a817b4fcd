"""The one error type for a knowledge base that cannot be loaded: start-up stops with it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class KnowledgeError(Exception):
    """A knowledge file is malformed. The message names the file, the rule (if any) and the field."""

    def __init__(self, file: str, message: str, *, rule: str | None = None, field: str | None = None):
        self.file, self.rule, self.field, self.message = file, rule, field, message
        self.also: tuple[KnowledgeError, ...] = ()     # the same file's other problems (ldn-rules validate lists them)
        where = file + (f", rule {rule}" if rule else "") + (f", field {field}" if field else "")
        super().__init__(f"{where}: {message}")

    def line(self) -> str:
        """The problem as a rule author's tools print it: `FILE: rule ID: field PATH: message`."""
        parts = [self.file] + [f"rule {self.rule}"] * bool(self.rule) + [f"field {self.field}"] * bool(self.field)
        return ": ".join(parts + [self.message])


def read_yaml(path: Path) -> tuple[bytes, Any]:
    """A knowledge file's bytes (for the version hash) and its YAML document, or KnowledgeError naming the file."""
    try:
        data = path.read_bytes()
        return data, yaml.safe_load(data)
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(str(path), f"not readable as YAML: {exc}") from exc
