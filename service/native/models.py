"""Response models of the native API (v1). Requests use service.core.context.PatientContext."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from ..core.context import Code
from ..core.decision import Decision
from ..core.representation import AdvisoryOut, NotEvaluatedOut, Out, Severity

class UnrecognizedMedication(Out):
    index: int = Field(description="Position in the request's medications list.")
    name: str | None = None
    codes: list[Code] = []
    why: str | None = Field(None, description="Why it is not (fully) recognised: the words or codes not understood, "
                                              "an ambiguous abbreviation, a code and a name that disagree.")


class EvaluationResponse(Out):
    evaluation_id: str
    as_of: dt.date
    knowledge_version: str
    advisories: list[AdvisoryOut]
    not_evaluated: list[NotEvaluatedOut]
    unrecognized_medications: list[UnrecognizedMedication]

    @classmethod
    def of(cls, evaluation_id: str, d: Decision) -> "EvaluationResponse":
        return cls(evaluation_id=evaluation_id, as_of=d.as_of, knowledge_version=d.knowledge_version,
                   advisories=[AdvisoryOut.of(a) for a in d.advisories],
                   not_evaluated=[NotEvaluatedOut.of(n) for n in d.not_evaluated],
                   unrecognized_medications=[UnrecognizedMedication(**u) for u in d.facts.unrecognized])


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
