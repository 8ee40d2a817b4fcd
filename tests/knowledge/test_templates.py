"""Advisory text templates and ids, prepared at load for speed: the same text and the same id as the plain way.

The reference below is the renderer as it was before templates were compiled (a regex substitution, then the
whitespace fold), and uuid.uuid5 itself.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.decision import _ADVISORY_NS, _advisory_id
from service.knowledge import templates

PATHS = ("a", "b.c", "param.k", "param.j")


def reference(text: str, lookup: Any) -> str:
    def fill(m: Any) -> str:
        value = lookup(m.group(1))
        if m.group(2) and value is not None:
            offset = int(m.group(3)) if m.group(3).isdigit() else lookup(m.group(3))
            if offset is None:
                return "unknown"
            day = dt.date.fromisoformat(str(value))
            delta = dt.timedelta(days=int(offset))
            value = (day - delta if m.group(2) == "-" else day + delta).isoformat()
        return "unknown" if value is None else templates._fmt(value)
    return " ".join(templates._PLACEHOLDER.sub(fill, text).split())


def outcome(render: Any) -> str:
    try:
        return render()
    except Exception as exc:                      # the same failure counts as the same answer
        return f"raises {type(exc).__name__}"


SPACE = st.sampled_from(["", " ", "  ", "\n", "\t", "\u00a0", "\u2028", "\x1f", "%", "%s", "a", "b c", "-"])
PLACEHOLDER = st.sampled_from([*(f"{{{p}}}" for p in PATHS), "{ d - 3 days}", "{d + param.j days}",
                               "{ d - param.k days }", "{d - a days}", "{param.k - 0 days}"])
VALUE = st.sampled_from([None, "", " ", "x", " x", "x ", "a  b", "a\nb", "a b", "\u00a0", "%s", 3, 4.0, 4.5, True,
                         [1, 2.0], ()])


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(pieces=st.lists(st.tuples(SPACE, PLACEHOLDER), max_size=5), end=SPACE, values=st.tuples(VALUE, VALUE),
       d=st.sampled_from([None, "2026-03-01", "0001-01-02"]), k=st.sampled_from([None, 2, 0, -3, "x y", " z"]),
       j=st.sampled_from([None, 2, 5.5, 10**10]))
def test_compiled_templates_render_as_the_regex_substitution(pieces: list[tuple[str, str]], end: str,
                                                              values: tuple[Any, Any], d: Any, k: Any, j: Any) -> None:
    text = "".join(s + p for s, p in pieces) + end
    env = {"a": values[0], "b.c": values[1], "d": d, "param.k": k, "param.j": j}
    want = outcome(lambda: reference(text, env.get))
    # Parameters as Known values (written into the text at load), and every path as a getter.
    known = templates.compile(text, lambda p: templates.Known(env[p]) if p.startswith("param.")
                              else (lambda scope: env.get(p)))
    plain = templates.compile(text, lambda p: lambda scope: env.get(p))
    assert outcome(lambda: known(None)) == want
    assert outcome(lambda: plain(None)) == want
    assert outcome(lambda: templates.render(text, env.get)) == want


@settings(max_examples=500, deadline=None, derandomize=True)
@given(head=st.text(max_size=80), key=st.text(max_size=1500))
def test_advisory_ids_are_uuid5(head: str, key: str) -> None:
    assert outcome(lambda: _advisory_id(head, key.encode())) == outcome(lambda: str(uuid.uuid5(_ADVISORY_NS,
                                                                                               head + key)))
