"""The FastAPI application: knowledge loaded and compiled once, routers mounted, the contract served."""
from __future__ import annotations

import logging
from importlib.metadata import version as package_version
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.requests import Request

from .native import audit_read, catalogue, evaluations
from .order_checks import api as order_checks
from .web import health, problems
from .audit.runtime import Auditor
from .web.auth import Authenticator
from .web.body_limit import BodyLimitMiddleware
from .web.drain import Drain
from .web.metrics import BUILD_INFO
from .cds_hooks import api as cds_hooks
from .core.decision import Evaluator
from .core.engine import EngineError
from .knowledge.base import load_knowledge
from .settings import Settings
from .web.openapi import API_VERSION, DESCRIPTION, TITLE, serve_contract
from .web.telemetry import TelemetryMiddleware
from .web import codesystems
from .web import docs, pages

log = logging.getLogger("ldn.app")


def create_app(settings: Settings | None = None, evaluator: Evaluator | None = None,
               auditor: Auditor | None = None) -> FastAPI:
    settings = settings or Settings()
    if evaluator is None:
        # A malformed rule file raises KnowledgeError here, naming file, rule and field: start-up stops.
        evaluator = Evaluator(load_knowledge(settings.rules_dir, settings.schemas_dir))
    auditor = auditor or Auditor(settings)   # one per worker process: its own queue and writer thread

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.drain.install(settings.shutdown_drain_s)   # SIGTERM: /readyz 503 first, then stop
        yield
        auditor.close()                       # graceful shutdown: flush every queued audit record

    app = FastAPI(title=TITLE, version=API_VERSION, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)      # FastAPI's own docs load from a CDN: see web/docs.py
    app.state.evaluator = evaluator
    app.state.auditor = auditor
    app.state.settings = settings
    app.state.drain = Drain()
    app.state.authenticator = Authenticator.from_files(settings.api_keys_file, settings.auth_issuers_file,
                                                       max_lifetime_s=settings.auth_jwt_max_lifetime_s)
    problems.install(app)

    @app.exception_handler(EngineError)
    async def _engine_failed(request: Request, exc: EngineError) -> JSONResponse:
        log.error("engine failure on %s: %s", request.url.path, type(exc).__name__)
        return problems.problem_response(503, "Evaluation failed",
                                         "The rules engine could not evaluate this request; no advice was given.")

    for module in (evaluations, order_checks, audit_read, catalogue, codesystems, health, cds_hooks, pages):
        app.include_router(module.router)
    app.mount("/static/pages", pages.STATIC, name="pages-static")
    if settings.docs_enabled:
        docs.install(app, TITLE)
    cds_hooks.install(app, settings)   # JWTs on /cds-services; a broken issuers file stops start-up
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:                  # browser CDS clients (the CDS Hooks sandbox): an origin allow-list
        app.add_middleware(CORSMiddleware, allow_origins=cds_hooks.csv(settings.cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Content-Type", "Authorization"])
    app.add_middleware(TelemetryMiddleware)   # outermost: every response gets a request id and a log line

    serve_contract(app, settings.contract_path)
    BUILD_INFO.labels(package_version("ldn-cds"), evaluator.kb.version).set(1)
    log.info("knowledge %s loaded: %d active rules", evaluator.kb.version, len(evaluator.kb.active_rules))
    return app
