"""The service's own absolute URLs: one builder for every link and code system the service puts into answers.

The base is PUBLIC_BASE_URL (required in production); in development, the URL the request came in on. Code
systems the service owns live under {base}/codesystems/{name} and are served there (service.web.codesystems).
Links for people go to the pages (service.web.pages): a card is opened in the EHR's browser, far from the request
that produced it. A quote's anchor is derived from its text alone, so a card links into a source page without
rendering it.
"""
from __future__ import annotations

import functools
import hashlib
from typing import Any
from urllib.parse import quote as _escape

from ..knowledge.sources import fold_whitespace

CODE_SYSTEMS_PATH = "/codesystems"


def base_url(request: Any) -> str:
    """The external base URL, without a trailing slash."""
    return (request.app.state.settings.public_base_url or str(request.base_url)).rstrip("/")


def service_url(base: str, *path: str) -> str:
    """{base}/{path...}: every absolute URL of this service is built here (rule and source pages, code systems)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in path)])


def code_system_url(base: str, name: str) -> str:
    return service_url(base, CODE_SYSTEMS_PATH, name)


def catalogue_page(base: str) -> str:
    return service_url(base, "rules")


def rule_page(base: str, rule_id: str) -> str:
    return service_url(base, "rules", _escape(rule_id, safe=""))


def source_page(base: str, source_id: str, quote: str | None = None) -> str:
    page = service_url(base, "sources", _escape(source_id, safe=""))
    return page if quote is None else f"{page}#{quote_anchor(quote)}"


@functools.lru_cache(maxsize=4096)     # the knowledge base's quotes, on every card: hashed once each (bounded)
def quote_anchor(quote: str) -> str:
    """The HTML id of a cited passage on its source page: the same quote always gets the same id."""
    return "q-" + hashlib.sha256(fold_whitespace(quote).encode("utf-8")).hexdigest()[:12]
