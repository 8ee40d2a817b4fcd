"""The pages people read: the rule catalogue, each rule, each source document (server-rendered HTML).

Public, without credentials: they hold the knowledge base only, never patient data. They are where a card's
links lead a clinician (FDA CDS guidance: the basis of a recommendation can be reviewed independently; ONC
HTI-1: the source attributes are available to users) and what a pharmacist reviewing a rule reads. No
JavaScript and nothing from another origin: the one stylesheet is served from here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ..knowledge.base import KnowledgeBase
from . import urls, views

HERE = Path(__file__).resolve().parent
STATIC = StaticFiles(directory=HERE / "static")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

# No script, nothing from another origin: the browser enforces what the templates promise.
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"

router = APIRouter(include_in_schema=False)


def _kb(request: Request) -> KnowledgeBase:
    return request.app.state.evaluator.kb


def _page(request: Request, template: str, section: str, status: int = 200, **context: Any) -> HTMLResponse:
    kb = _kb(request)
    html = _ENV.get_template(template).render(
        base=urls.base_url(request), section=section, docs=request.app.state.settings.docs_enabled,
        knowledge_version=kb.version, intended_use=" ".join(kb.meta["intended_use"].split()), **context)
    # Public knowledge, the same for everyone until the knowledge changes: caches may keep it briefly.
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "public, max-age=300",
                                                           "Content-Security-Policy": CSP})


def _one(request: Request, kind: str, key: str, section: str) -> HTMLResponse:
    """A rule or source page (`kind`), or a 404 page naming what was asked for."""
    kb = _kb(request)
    found = (kb.rules if kind == "rule" else kb.sources).get(key)
    if found is None:
        return _page(request, "not_found.html", section, status=404, what=kind, missing=key)
    build = views.rule_page if kind == "rule" else views.source_page
    return _page(request, f"{kind}.html", section, **build(kb, found, urls.base_url(request)))


@router.get("/rules", response_class=HTMLResponse)
def catalogue_page(request: Request) -> HTMLResponse:
    return _page(request, "catalogue.html", "rules", rules=views.catalogue(_kb(request), urls.base_url(request)))


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(rule_id: str, request: Request) -> HTMLResponse:
    return _one(request, "rule", rule_id, "rules")


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request) -> HTMLResponse:
    return _page(request, "sources.html", "sources", sources=views.sources(_kb(request), urls.base_url(request)))


@router.get("/sources/{source_id}", response_class=HTMLResponse)
def source_page(source_id: str, request: Request) -> HTMLResponse:
    return _one(request, "source", source_id, "sources")
