"""The FastAPI application: knowledge loaded and compiled once, routers mounted, the contract served."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import yaml
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request

from .native import audit_read, catalogue, evaluations
from .order_checks import api as order_checks
from .web import health, problems
from .audit.runtime import Auditor
from .web.auth import SECURITY_SCHEMES, Authenticator, requires_credentials
from .web.body_limit import BodyLimitMiddleware
from .cds_hooks import api as cds_hooks
from .core.decision import Evaluator
from .core.engine import EngineError
from .knowledge.base import PROJECT_ROOT, load_knowledge
from .settings import Settings
from .web.telemetry import TelemetryMiddleware

CONTRACT = PROJECT_ROOT / "openapi.yaml"
TITLE = "LDN decision support"
API_VERSION = "1.0.0"
DESCRIPTION = ("Clinical decision support for low-dose naltrexone (LDN): declarative rules drawn from four source "
               "documents, run by durable-rules, answering with advisories that cite the exact source passages.")
log = logging.getLogger("ldn.app")


def generated_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document the code implies; tests compare it with the committed contract.

    Every error response is RFC 9457 problem+json: FastAPI's default 422 schema (HTTPValidationError) is
    replaced, since our handler never sends that shape."""
    doc = get_openapi(title=TITLE, version=API_VERSION, description=DESCRIPTION, routes=app.routes)
    _declare_credentials(doc, app)
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                # Only the errors our problem handlers send: not those with another body (CDS Hooks' 412
                # OperationOutcome) or none at all (CDS Hooks' 401).
                ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                if status[0] in "45" and ref.rsplit("/", 1)[-1] in ("Problem", "HTTPValidationError"):
                    response["content"] = {problems.PROBLEM_JSON: {"schema": dict(problem["schema"])}}
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def _depends_on_require(dependant: Dependant) -> bool:
    return any(requires_credentials(d.call) or _depends_on_require(d) for d in dependant.dependencies)


def _declare_credentials(doc: dict[str, Any], app: FastAPI) -> None:
    """The API key and bearer schemes on every operation whose route depends on auth.require(), as FastAPI declares
    security sub-dependencies (require() reads the credentials without them: see auth.SECURITY_SCHEMES)."""
    schemes = {name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
               for name, scheme in SECURITY_SCHEMES.items()}
    declared = False
    for route in iter_route_contexts(app.routes):           # as get_openapi walks them (routers included)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema \
                and _depends_on_require(route.dependant):
            for method in route.methods:
                operation = doc["paths"][route.path_format][method.lower()]
                operation.setdefault("security", []).extend({name: []} for name in schemes)
                declared = True
    if declared:
        doc.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)


def load_contract(path: Path = CONTRACT) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def create_app(settings: Settings | None = None, evaluator: Evaluator | None = None,
               auditor: Auditor | None = None) -> FastAPI:
    settings = settings or Settings()
    if evaluator is None:
        # A malformed rule file raises KnowledgeError here, naming file, rule and field: start-up stops.
        evaluator = Evaluator(load_knowledge(settings.rules_dir, settings.schemas_dir))
    auditor = auditor or Auditor(settings)   # one per worker process: its own queue and writer thread

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        auditor.close()                       # graceful shutdown: flush every queued audit record

    app = FastAPI(title=TITLE, version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.evaluator = evaluator
    app.state.auditor = auditor
    app.state.settings = settings
    app.state.authenticator = Authenticator.from_files(settings.api_keys_file, settings.auth_issuers_file)
    problems.install(app)

    @app.exception_handler(EngineError)
    async def _engine_failed(request: Request, exc: EngineError) -> JSONResponse:
        log.error("engine failure on %s: %s", request.url.path, type(exc).__name__)
        return problems.problem_response(503, "Evaluation failed",
                                         "The rules engine could not evaluate this request; no advice was given.")

    for module in (evaluations, order_checks, audit_read, catalogue, health, cds_hooks):
        app.include_router(module.router)
    cds_hooks.install(app, settings)   # JWTs on /cds-services; a broken issuers file stops start-up
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:                  # browser CDS clients (the CDS Hooks sandbox): an origin allow-list
        app.add_middleware(CORSMiddleware, allow_origins=cds_hooks.csv(settings.cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Content-Type", "Authorization"])
    app.add_middleware(TelemetryMiddleware)   # outermost: every response gets a request id and a log line

    contract = load_contract(settings.contract_path) if settings.contract_path.exists() else None
    app.openapi = (lambda: contract) if contract is not None else (lambda: generated_openapi(app))  # type: ignore[method-assign]
    log.info("knowledge %s loaded: %d active rules", evaluator.kb.version, len(evaluator.kb.active_rules))
    return app
