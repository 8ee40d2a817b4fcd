"""The service's own absolute URLs: one builder for every link and code system the service puts into answers.

The base is PUBLIC_BASE_URL (required in production); in development, the URL the request came in on. Code
systems the service owns live under {base}/codesystems/{name} and are served there (service.web.codesystems).
"""
from __future__ import annotations

from typing import Any

CODE_SYSTEMS_PATH = "/codesystems"


def base_url(request: Any) -> str:
    """The external base URL, without a trailing slash."""
    return (request.app.state.settings.public_base_url or str(request.base_url)).rstrip("/")


def service_url(base: str, *path: str) -> str:
    """{base}/{path...}: every absolute URL of this service is built here (rule and source pages, code systems)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in path)])


def code_system_url(base: str, name: str) -> str:
    return service_url(base, CODE_SYSTEMS_PATH, name)
