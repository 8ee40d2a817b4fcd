"""Advisory text templates: `{path}` and `{path - param.name days}` (date arithmetic for hold-from dates).

Paths: `as_of`, `param.<name>`, `evidence.<key>[.<field>]`, or a fact path such as `ldn.dose_mg`.
Kept deliberately tiny: clinicians read and edit these strings.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

_PLACEHOLDER = re.compile(r"\{\s*([a-z_][a-z0-9_.]*)(?:\s*([+-])\s*([a-z_][a-z0-9_.]*|\d+)\s+days)?\s*\}")

S = TypeVar("S")
Getter = Callable[[S], Any]


@dataclass(frozen=True)
class Known:
    """A placeholder's value known when the template is compiled (a rule parameter): written into the text once."""
    value: Any


def placeholders(text: str) -> list[tuple[str, str | None]]:
    """[(path, offset path or None)] for every placeholder in text."""
    return [(m.group(1), m.group(3)) for m in _PLACEHOLDER.finditer(text)]


def _fmt(value: Any) -> str:
    if type(value) is str:                    # the common case, first: str(value) would return it unchanged
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _getter(bound: Getter[S] | Known) -> Getter[S]:
    """A Known value as a getter, for the date arithmetic that takes either."""
    if isinstance(bound, Known):
        value = bound.value
        return lambda scope: value
    return bound


def _slot(m: re.Match[str], bind: Callable[[str], Getter[S] | Known]) -> Callable[[S], str] | str:
    """One placeholder with its paths bound: `scope -> text`, or the text itself when it is known at compile time.
    Unknown values render as 'unknown'."""
    bound, sign, offset = bind(m.group(1)), m.group(2), m.group(3)
    if not sign:
        if isinstance(bound, Known):
            return "unknown" if bound.value is None else _fmt(bound.value)
        return lambda scope: "unknown" if (value := bound(scope)) is None else _fmt(value)
    get = _getter(bound)
    days = Known(int(offset)) if offset.isdigit() else bind(offset)
    if isinstance(days, Known) and days.value is not None:
        # The common case, a fixed number of days (a rule parameter): the timedelta made once. One that cannot be
        # made fails per render below, as it always did.
        try:
            delta = dt.timedelta(days=int(days.value) if sign == "+" else -int(days.value))
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            return lambda scope: "unknown" if (value := get(scope)) is None else \
                (dt.date.fromisoformat(str(value)) + delta).isoformat()
    get_days = _getter(days)

    def shifted(scope: S) -> str:
        value = get(scope)
        if value is None:
            return "unknown"
        n = get_days(scope)
        if n is None:
            return "unknown"
        day, delta = dt.date.fromisoformat(str(value)), dt.timedelta(days=int(n))
        return (day - delta if sign == "-" else day + delta).isoformat()
    return shifted


def compile(text: str, bind: Callable[[str], Getter[S] | Known]) -> Callable[[S], str]:
    """The template prepared once, at load. `bind(path)` gives each placeholder's getter, called per render with
    the caller's scope, or its Known value, written into the text now. Renders as the regex substitution followed by
    the whitespace fold; a template with nothing left to fill is folded once."""
    literals = _PLACEHOLDER.split(text)[::4]        # the text around the placeholders (split adds 3 groups each)
    # Known values joined to the literals around them: `parts` alternates literal (str) and slot, str at both ends.
    parts: list[Any] = [literals[0]]
    for m, literal in zip(_PLACEHOLDER.finditer(text), literals[1:]):
        for piece in (_slot(m, bind), literal):
            if isinstance(piece, str) and isinstance(parts[-1], str):
                parts[-1] += piece
            else:
                parts.append(piece)
    if len(parts) == 1:
        folded = " ".join(parts[0].split())
        return lambda scope: folded
    slots = parts[1::2]
    raw = "%s".join(t.replace("%", "%%") for t in parts[::2])

    def render_(scope: S) -> str:
        return " ".join((raw % tuple([slot(scope) for slot in slots])).split())
    return render_


def render(text: str, lookup: Callable[[str], Any]) -> str:
    """Fill the placeholders; `lookup(path)` returns the value or None. Unknown values render as 'unknown'."""
    return compile(text, lambda path: lambda scope: lookup(path))(None)
