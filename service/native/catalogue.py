"""The rule and source catalogue: what reviewers read (GET /v1/rules, /v1/sources)."""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException

from ..web.auth import require
from ..core.decision import Evaluator, max_severity
from ..knowledge.rules import SEVERITY_RANK, Rule
from ..web.dependencies import evaluator
from ..web.problems import error_responses
from .models import (BibliographicCitation, DataElement, Parameter, RuleDetail, RuleList, RuleSummary,
                     SourceAttributes, SourceDetail, SourceList, SourceSummary)

# Any valid credential may read the catalogue: it holds no patient data, but /v1/* is not public.
router = APIRouter(prefix="/v1", tags=["catalogue"], dependencies=[Depends(require(None))],
                   responses=error_responses(401))


def _rule_detail(ev: Evaluator, rule: Rule) -> RuleDetail:
    kb = ev.kb
    bibliography = [
        BibliographicCitation(source_id=c.source_id, title=c.title, author=kb.sources[c.source_id].author,
                              publisher=kb.sources[c.source_id].publisher, date=kb.sources[c.source_id].date,
                              url=f"/v1/sources/{c.source_id}", quote=c.quote, stance=c.stance, note=c.note)
        for c in rule.citations]
    elements = [DataElement(input=i, description=d, required=r) for i, d, r in kb.data_elements(rule)]
    attrs = SourceAttributes(developer=kb.meta["developer"], funding_source=kb.meta["funding_source"],
                             intended_use=" ".join(kb.meta["intended_use"].split()),
                             release_date=dt.date.fromisoformat(rule.released),
                             revision_date=dt.date.fromisoformat(rule.revised),
                             bibliographic_citations=bibliography, patient_data_elements=elements)
    severities = sorted({rule.severity, *(e.severity for e in rule.escalations)}, key=SEVERITY_RANK.__getitem__)
    return RuleDetail(
        id=rule.id, version=rule.version, title=rule.title, status=rule.status, severity=rule.severity,
        severities=severities, description=rule.description,
        parameters={k: Parameter(**v) for k, v in rule.parameters.items()}, condition=rule.raw["when"],
        escalations=list(rule.raw.get("escalations") or []), advisory=dict(rule.raw["advisory"]),
        coding=rule.coding, test_cases=list(rule.tests), source_attributes=attrs, file=rule.file,
        sha256=rule.sha256, knowledge_version=kb.version)


@router.get("/rules", response_model=RuleList, summary="The rule catalogue")
def list_rules(ev: Evaluator = Depends(evaluator)) -> RuleList:
    rules = [RuleSummary(id=r.id, version=r.version, title=r.title, status=r.status, severity=max_severity(r),
                         url=f"/v1/rules/{r.id}") for r in ev.kb.rules.values()]
    return RuleList(knowledge_version=ev.kb.version, rules=rules)


@router.get("/rules/{rule_id}", response_model=RuleDetail, responses=error_responses(404),
            summary="One rule as a reviewer reads it, with its HTI-1 source attributes")
def get_rule(rule_id: str, ev: Evaluator = Depends(evaluator)) -> RuleDetail:
    rule = ev.kb.rules.get(rule_id)
    if rule is None:
        raise HTTPException(404, f"no rule with id {rule_id!r}")
    return _rule_detail(ev, rule)


def _source_summary(s) -> dict:
    return dict(id=s.id, title=s.title, author=s.author, publisher=s.publisher, date=s.date, file=s.file,
                summary=s.summary, url=f"/v1/sources/{s.id}")


@router.get("/sources", response_model=SourceList, summary="The source documents rules cite")
def list_sources(ev: Evaluator = Depends(evaluator)) -> SourceList:
    return SourceList(sources=[SourceSummary(**_source_summary(s)) for s in ev.kb.sources.values()])


@router.get("/sources/{source_id}", response_model=SourceDetail, responses=error_responses(404),
            summary="One source document with its full text")
def get_source(source_id: str, ev: Evaluator = Depends(evaluator)) -> SourceDetail:
    source = ev.kb.sources.get(source_id)
    if source is None:
        raise HTTPException(404, f"no source with id {source_id!r}")
    cited_by = sorted(r.id for r in ev.kb.rules.values() if any(c.source_id == source.id for c in r.citations))
    return SourceDetail(**_source_summary(source), title_in_text=source.title_in_text, text=source.text,
                        cited_by=cited_by)
