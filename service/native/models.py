"""Response models of the native API (v1). Requests use service.core.context.PatientContext."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.context import Code
from ..core.decision import Advisory, Decision, NotEvaluated
from ..knowledge.rules import Citation

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
    def data(a: Advisory) -> dict[str, Any]:
        """This model as plain data, fields in the model's order (order-check issues extend it)."""
        return {"id": a.id, "rule_id": a.rule_id, "rule_version": a.rule_version, "severity": a.severity,
                "title": a.title, "summary": a.summary, "detail": a.detail, "action": a.action,
                "evidence": a.evidence, "citations": [CitationOut.of(c) for c in a.citations]}


class NotEvaluatedOut(Out):
    rule_id: str
    rule_version: str
    severity: Severity = Field(description="The highest severity this rule could have raised.")
    missing: list[str] = Field(description="Inputs (rules/knowledge.yaml) that were not provided.")
    reason: str

    @staticmethod
    def data(n: NotEvaluated) -> dict[str, Any]:
        return {"rule_id": n.rule_id, "rule_version": n.rule_version, "severity": n.severity,
                "missing": list(n.missing), "reason": n.reason}


class UnrecognizedMedication(Out):
    index: int = Field(description="Position in the request's medications list.")
    name: str | None = None
    codes: list[Code] = []


class EvaluationResponse(Out):
    evaluation_id: str
    as_of: dt.date
    knowledge_version: str
    advisories: list[AdvisoryOut]
    not_evaluated: list[NotEvaluatedOut]
    unrecognized_medications: list[UnrecognizedMedication]

    @staticmethod
    def data(evaluation_id: str, d: Decision) -> dict[str, Any]:
        """This model as plain data, fields in the model's order: `to_json` of it is the model's JSON (tested), so
        the endpoint sends it without building the models (a fifth of a request's own time)."""
        return {"evaluation_id": evaluation_id, "as_of": d.as_of, "knowledge_version": d.knowledge_version,
                "advisories": [AdvisoryOut.data(a) for a in d.advisories],
                "not_evaluated": [NotEvaluatedOut.data(n) for n in d.not_evaluated],
                "unrecognized_medications": d.facts.unrecognized}


class RuleSummary(Out):
    id: str
    version: str
    title: str
    status: Literal["active", "draft", "retired"]
    severity: Severity
    url: str


class RuleList(Out):
    knowledge_version: str
    rules: list[RuleSummary]


class BibliographicCitation(Out):
    source_id: str
    title: str
    author: str | None
    publisher: str | None
    date: str | None
    url: str
    quote: str
    stance: Literal["supports", "conflicts"]
    note: str | None = None


class DataElement(Out):
    input: str
    description: str
    required: bool = Field(description="True when the rule is not evaluated without it.")


class SourceAttributes(Out):
    """ONC HTI-1 decision-support source attributes (45 CFR 170.315(b)(11)) for an evidence-based DSI."""
    developer: str
    funding_source: str
    intended_use: str
    release_date: dt.date
    revision_date: dt.date
    bibliographic_citations: list[BibliographicCitation]
    patient_data_elements: list[DataElement]


class Parameter(Out):
    value: Any
    unit: str | None = None
    description: str


class RuleDetail(Out):
    id: str
    version: str
    title: str
    status: Literal["active", "draft", "retired"]
    severity: Severity
    severities: list[Severity] = Field(description="Every severity the rule can raise (escalations included).")
    description: str
    parameters: dict[str, Parameter]
    condition: dict[str, Any] = Field(description="The condition as written in the rule file.")
    escalations: list[dict[str, Any]]
    advisory: dict[str, str] = Field(description="summary, detail and action templates.")
    coding: dict[str, Any]
    test_cases: list[dict[str, Any]]
    source_attributes: SourceAttributes
    file: str
    sha256: str
    knowledge_version: str


class SourceSummary(Out):
    id: str
    title: str
    author: str | None
    publisher: str | None
    date: str | None
    file: str
    summary: str
    url: str


class SourceList(Out):
    sources: list[SourceSummary]


class SourceDetail(SourceSummary):
    title_in_text: bool = Field(description="False when the document has no title and ours describes it.")
    text: str
    cited_by: list[str] = Field(description="Rule ids that quote this source.")


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    status: Literal["ready", "degraded"]
    audit: Literal["ok", "unavailable"]
    knowledge_version: str
    active_rules: int
