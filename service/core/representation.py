"""The decision as every channel writes it: advisories with their citations, and the rules not evaluated.

The native API's answer is made of these, and an order-check issue extends AdvisoryOut (same citations, same
evidence): one vocabulary across the APIs, one serializer (the models themselves).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..knowledge.rules import Citation
from .decision import Advisory, NotEvaluated

Severity = Literal["critical", "warning", "info"]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CitationOut(Out):
    model_config = ConfigDict(frozen=True)   # instances are shared between responses (see `of`)

    source_id: str
    title: str
    quote: str = Field(description="Verbatim passage of the source (whitespace folded).")
    stance: Literal["supports", "conflicts"]
    url: str = Field(description="The source document in this service.")

    @staticmethod
    @lru_cache(maxsize=1024)
    def of(c: Citation) -> "CitationOut":
        # a rule's citations are knowledge, not request data: built once, not per advisory
        return CitationOut(source_id=c.source_id, title=c.title, quote=c.quote, stance=c.stance,
                           url=f"/v1/sources/{c.source_id}")


class AdvisoryOut(Out):
    id: str = Field(description="Deterministic: the same request under the same knowledge gives the same id.")
    rule_id: str
    rule_version: str
    severity: Severity
    title: str
    summary: str = Field(max_length=139)
    detail: str
    action: str
    evidence: dict[str, Any] = Field(description="The inputs that triggered the rule, as understood.")
    citations: list[CitationOut] = Field(min_length=1)

    @staticmethod
    def fields_of(a: Advisory) -> dict[str, Any]:
        """The advisory's fields (order-check issues add theirs)."""
        return {"id": a.id, "rule_id": a.rule_id, "rule_version": a.rule_version, "severity": a.severity,
                "title": a.title, "summary": a.summary, "detail": a.detail, "action": a.action,
                "evidence": a.evidence, "citations": [CitationOut.of(c) for c in a.citations]}

    @classmethod
    def of(cls, a: Advisory) -> "AdvisoryOut":
        return cls(**cls.fields_of(a))


class NotEvaluatedOut(Out):
    rule_id: str
    rule_version: str
    severity: Severity = Field(description="The highest severity this rule could have raised.")
    missing: list[str] = Field(description="Inputs (rules/knowledge.yaml) that were not provided.")
    reason: str

    @classmethod
    def of(cls, n: NotEvaluated) -> "NotEvaluatedOut":
        return cls(rule_id=n.rule_id, rule_version=n.rule_version, severity=n.severity, missing=list(n.missing),
                   reason=n.reason)


