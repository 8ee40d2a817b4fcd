"""The knowledge base shaped for the pages people read: plain data the templates show, no HTML here.

A rule's condition and texts are shown as written in its file, with each parameter's value and unit put in, so a
pharmacist reviewing a rule reads what the engine runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.decision import max_severity
from ..knowledge.base import KnowledgeBase
from ..knowledge.rules import Rule
from ..knowledge.sources import Source
from . import urls

_OPS = {"is": "is", "is_not": "is not", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "is one of"}
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_PARAM = re.compile(r"param\.([a-z][a-z0-9_]*)")
_EXPECT = {"fires": "gives the advice", "silent": "stays silent", "not-evaluated": "reports it as not evaluated"}


def one_line(text: str) -> str:
    """The first sentence of a description: the catalogue's 'what it checks'."""
    return re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0]


def _value(value: Any, unit: str | None = None) -> str:
    if value is None:
        text = "unknown"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


def _operand(operand: Any, params: dict[str, dict[str, Any]]) -> str:
    if isinstance(operand, dict) and "param" in operand:
        p = params[operand["param"]]
        return f"{_value(p['value'], p.get('unit'))} ({operand['param']})"
    return _value(operand)


def condition_text(cond: dict[str, Any], params: dict[str, dict[str, Any]]) -> str:
    """A condition of the rule language in words: `ldn.dose_mg > 5 mg (ldn_max_mg) and ...`."""
    for key, word in (("all", " and "), ("any", " or ")):
        if key in cond:
            parts = [condition_text(c, params) for c in cond[key]]
            text = word.join(f"({p})" if (" and " in p or " or " in p) else p for p in parts)
            return text
    fact = cond["fact"]
    if "exists" in cond:
        return f"{fact} is {'known' if cond['exists'] else 'not known'}"
    op = next(k for k in _OPS if k in cond)
    return f"{fact} {_OPS[op]} {_operand(cond[op], params)}"


def advice_text(text: str, params: dict[str, dict[str, Any]]) -> list[tuple[str, str | None]]:
    """An advisory template as [(text, None) | (label, path)]: parameters filled in as the advice shows them, the
    other placeholders (the patient's values) kept as named slots that the page shows as variables."""
    def param(m: re.Match[str]) -> str:
        return _value(params[m.group(1)]["value"]) if m.group(1) in params else m.group(0)

    folded = " ".join(text.split())
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(folded):
        out.append((folded[pos:m.start()], None))
        inner = m.group(1).strip()
        filled = _PARAM.sub(param, inner)
        if _PARAM.fullmatch(inner):
            out.append((filled, None))
        else:
            out.append((filled.replace("evidence.", "").replace(" - ", " − "), inner))
        pos = m.end()
    out.append((folded[pos:], None))
    return [(t, p) for t, p in out if t]


def _context_lines(value: Any, prefix: str = "") -> list[str]:
    """A test case's patient context as readable lines: `ldn: status active, dose_mg 4.5`."""
    if isinstance(value, dict):
        scalars = [f"{k} {_value(v)}" for k, v in value.items() if not isinstance(v, (dict, list))]
        nested = [line for k, v in value.items() if isinstance(v, (dict, list))
                  for line in _context_lines(v, f"{k}: ")]
        head = [f"{prefix}{', '.join(scalars)}"] if scalars else ([f"{prefix}(none)"] if not nested else [])
        return head + nested
    if isinstance(value, list):
        if not value:
            return [f"{prefix}none"]
        return [line for item in value for line in _context_lines(item, prefix)]
    return [f"{prefix}{_value(value)}"]


@dataclass(frozen=True)
class Quote:
    source_id: str
    source_title: str
    text: str
    stance: str
    note: str | None
    url: str                     # into the source page, at the passage's anchor


def quotes(rule: Rule, base: str) -> list[Quote]:
    return [Quote(c.source_id, c.title, c.quote, c.stance, c.note, urls.source_page(base, c.source_id, c.quote))
            for c in rule.citations]


def catalogue(kb: KnowledgeBase, base: str) -> list[dict[str, Any]]:
    return [{"id": r.id, "title": r.title, "version": r.version, "status": r.status, "severity": r.severity,
             "highest": max_severity(r), "checks": one_line(r.description), "url": urls.rule_page(base, r.id)}
            for r in kb.rules.values()]


def rule_page(kb: KnowledgeBase, rule: Rule, base: str) -> dict[str, Any]:
    params = rule.parameters
    raw = rule.raw
    escalations = [{"severity": e["severity"], "when": condition_text(e["when"], params),
                    "summary": advice_text(e["summary"], params) if e.get("summary") else None,
                    "action": advice_text(e["action"], params) if e.get("action") else None}
                   for e in raw.get("escalations") or ()]
    advice = {k: advice_text(raw["advisory"][k], params) for k in ("summary", "detail", "action")}
    cases = [{"name": c["name"], "context": _context_lines(c["context"]), "expect": _EXPECT[c["expect"]],
              "severity": c.get("severity")} for c in rule.tests]
    sources = {c.source_id: kb.sources[c.source_id] for c in rule.citations}
    return {"rule": rule, "when": condition_text(raw["when"], params),
            "parameters": [(n, _value(p["value"]), p.get("unit"), " ".join(p["description"].split()))
                           for n, p in params.items()], "escalations": escalations,
            "advice": advice, "quotes": quotes(rule, base), "cases": cases, "meta": kb.meta,
            "data_elements": kb.data_elements(rule),
            "requires": [kb.inputs[i]["short"] for i in rule.requires], "sources": sources,
            "source_urls": {sid: urls.source_page(base, sid) for sid in sources}}


def _spans(source: Source, cited: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, quote) of each cited passage in the source's own text (the quote has its whitespace folded)."""
    out = []
    for quote in cited:
        m = re.search(r"\s+".join(map(re.escape, quote.split())), source.text)
        if m is not None:                 # always found: the loader refuses a quote that is not verbatim
            out.append((m.start(), m.end(), quote))
    return out


def segments(source: Source, cited: list[str]) -> list[dict[str, Any]]:
    """The source text cut where a cited passage starts or ends: [{text, marked, anchors}]. A passage's anchor
    goes on the segment where it starts; passages may overlap or nest, each keeps its own anchor."""
    spans = _spans(source, cited)
    cuts = sorted({0, len(source.text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        out.append({"text": source.text[a:b], "marked": any(s <= a and b <= e for s, e, _ in spans),
                    "anchors": [urls.quote_anchor(q) for s, _, q in spans if s == a]})
    return out


def source_page(kb: KnowledgeBase, source: Source, base: str) -> dict[str, Any]:
    passages: dict[str, dict[str, str]] = {}          # quote -> {rule id: rule title}, in the rules' order
    for rule in kb.rules.values():
        for c in rule.citations:
            if c.source_id == source.id:
                passages.setdefault(c.quote, {})[rule.id] = rule.title
    cited = [{"quote": q, "anchor": urls.quote_anchor(q),
              "rules": [(title, urls.rule_page(base, rid)) for rid, title in by.items()]}
             for q, by in passages.items()]
    rules = {rid: title for by in passages.values() for rid, title in by.items()}
    return {"source": source, "segments": segments(source, list(passages)), "cited": cited,
            "rules": [(title, rid, urls.rule_page(base, rid)) for rid, title in rules.items()]}


def sources(kb: KnowledgeBase, base: str) -> list[dict[str, Any]]:
    return [{"source": s, "url": urls.source_page(base, s.id),
             "cited_by": sum(1 for r in kb.rules.values() if any(c.source_id == s.id for c in r.citations))}
            for s in kb.sources.values()]
