"""The source registry: the documents rules cite, and the verbatim-quote check."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import KnowledgeError

_WS = re.compile(r"\s+")


def fold_whitespace(text: str) -> str:
    """Quotes are compared with runs of whitespace folded to one space (the only liberty a quote may take)."""
    return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class Source:
    id: str
    file: str
    title: str
    title_in_text: bool
    author: str | None
    publisher: str | None
    date: str | None
    summary: str
    text: str

    def contains(self, quote: str) -> bool:
        return fold_whitespace(quote) in fold_whitespace(self.text)


def load_sources(directory: Path) -> dict[str, Source]:
    registry = directory / "registry.yaml"
    try:
        doc = yaml.safe_load(registry.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(str(registry), f"cannot read the source registry: {exc}") from exc
    sources: dict[str, Source] = {}
    for i, entry in enumerate((doc or {}).get("sources") or []):
        field_prefix = f"sources[{i}]"
        for key in ("id", "file", "title", "summary"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise KnowledgeError(str(registry), "missing or empty", field=f"{field_prefix}.{key}")
        path = directory / entry["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KnowledgeError(str(registry), f"source file {entry['file']} unreadable: {exc}",
                                 field=f"{field_prefix}.file") from exc
        if entry["id"] in sources:
            raise KnowledgeError(str(registry), f"duplicate source id {entry['id']}", field=f"{field_prefix}.id")
        sources[entry["id"]] = Source(
            id=entry["id"], file=entry["file"], title=entry["title"],
            title_in_text=bool(entry.get("title_in_text")), author=entry.get("author"),
            publisher=entry.get("publisher"), date=None if entry.get("date") is None else str(entry["date"]),
            summary=" ".join(entry["summary"].split()), text=text,
        )
    if not sources:
        raise KnowledgeError(str(registry), "no sources listed", field="sources")
    return sources
