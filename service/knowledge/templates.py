"""Advisory text templates: `{path}` and `{path - param.name days}` (date arithmetic for hold-from dates).

Paths: `as_of`, `param.<name>`, `evidence.<key>[.<field>]`, or a fact path such as `ldn.dose_mg`.
Kept deliberately tiny: clinicians read and edit these strings.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

_PLACEHOLDER = re.compile(r"\{\s*([a-z_][a-z0-9_.]*)(?:\s*([+-])\s*([a-z_][a-z0-9_.]*|\d+)\s+days)?\s*\}")


def placeholders(text: str) -> list[tuple[str, str | None]]:
    """[(path, offset path or None)] for every placeholder in text."""
    return [(m.group(1), m.group(3)) for m in _PLACEHOLDER.finditer(text)]


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def render(text: str, lookup: Callable[[str], Any]) -> str:
    """Fill the placeholders; `lookup(path)` returns the value or None. Unknown values render as 'unknown'."""
    def fill(m: re.Match[str]) -> str:
        value = lookup(m.group(1))
        if m.group(2) and value is not None:
            offset = int(m.group(3)) if m.group(3).isdigit() else lookup(m.group(3))
            if offset is None:
                return "unknown"
            day = dt.date.fromisoformat(str(value))
            delta = dt.timedelta(days=int(offset))
            value = (day - delta if m.group(2) == "-" else day + delta).isoformat()
        return "unknown" if value is None else _fmt(value)
    return " ".join(_PLACEHOLDER.sub(fill, text).split())


def compile(text: str) -> Callable[[Callable[[str], Any]], str]:
    """render(text, ·) prepared once, at load: a template without placeholders is folded once and returned as is
    (the same string render would give); one with placeholders is rendered per call, exactly as render does."""
    if _PLACEHOLDER.search(text) is None:
        folded = " ".join(text.split())
        return lambda lookup: folded
    return lambda lookup: render(text, lookup)
