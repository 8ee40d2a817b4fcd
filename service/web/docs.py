"""API documentation that works offline: Swagger UI at /docs and ReDoc at /redoc, their assets from the
fastapi-offline package, served here (FastAPI's own pages load them from a CDN: blank on a hospital network).

A Content-Security-Policy keeps every request on this origin: ReDoc's sidebar asks a CDN for its logo, which
the browser then does not fetch (the browser test checks that nothing leaves). Off with API_DOCS=false, and by
default in production.
"""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/static/api-docs"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _csp(html: str) -> str:
    """Same-origin only; Swagger UI's one inline start-up script is allowed by its hash, not by 'unsafe-inline'.
    Styles need 'unsafe-inline' (both UIs inject theirs); ReDoc's search index runs in a blob: worker."""
    hashes = " ".join("'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
                      for s in _INLINE_SCRIPT.findall(html))
    return ("default-src 'self'; script-src 'self' " + hashes + "; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'none'")


def _page(response: HTMLResponse) -> HTMLResponse:
    html = response.body.decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": _csp(html)})


def install(app: FastAPI, title: str, openapi_url: str = "/openapi.json") -> None:
    """Mount the assets and the two pages. Relative URLs: they work behind a proxy's path prefix as they are."""
    swagger = _page(get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{title}: Swagger UI", swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css", swagger_favicon_url=f"{PREFIX}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None}))       # no call to the online validator
    redoc = _page(get_redoc_html(
        openapi_url=openapi_url, title=f"{title}: ReDoc", redoc_js_url=f"{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False))
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/docs", lambda: swagger, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/redoc", lambda: redoc, methods=["GET"], response_class=HTMLResponse)
    app.include_router(router)
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="api-docs-static")
