"""The benchmark's server: the production app plus baseline routes (the HTTP floor). Not part of the contract.

    .venv/bin/python -m uvicorn bench.app:app --host 127.0.0.1 --port 8765 --log-level warning

`service.app.create_app()` exactly as shipped (same middleware: telemetry, body limit; same error handlers), with
one baseline route per benchmarked endpoint. A baseline takes the endpoint's own request model, so FastAPI reads,
parses and validates the same body the same way, and returns it (serialised through the same model): what is
left between an endpoint and its baseline is the service's own work (mapping, facts, engine, advisories,
rendering), which is what the ratio in the benchmark table shows. The baselines are `async def`: the floor is the
framework and the body model, not a thread-pool hop a handler may or may not need. `/bench/baseline/bare/order-sign`
is the bare floor of order-sign: the body parsed as JSON and nothing else (no request model), the least any JSON
service pays for the same bytes.
"""
from __future__ import annotations

import json
import os
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from service.app import create_app
from service.web import heap
from service.core.context import PatientContext

BASELINE_PREFIX = "/bench/baseline"
router = APIRouter(prefix=BASELINE_PREFIX, include_in_schema=False)
AVAILABLE: dict[str, str] = {}     # baseline name -> "ok" or why it is missing


@router.post("/evaluations", response_model=PatientContext)
async def baseline_evaluations(body: PatientContext) -> Any:
    return body


AVAILABLE["evaluations"] = "ok"

try:  # the order-check request model (in progress when the benchmark was written)
    from service.order_checks.mapping import OrderCheckRequest

    @router.post("/order-checks", response_model=OrderCheckRequest)
    async def baseline_order_checks(body: OrderCheckRequest) -> Any:
        return body

    AVAILABLE["order-checks"] = "ok"
except ImportError as exc:   # pragma: no cover - depends on the state of service/
    AVAILABLE["order-checks"] = f"not available: {exc}"

try:  # the CDS Hooks order-sign request model
    from service.cds_hooks.models import OrderSignRequest

    @router.post("/cds-services/order-sign", response_model=OrderSignRequest)
    async def baseline_order_sign(body: OrderSignRequest) -> Any:
        return body

    AVAILABLE["order-sign"] = "ok"
except ImportError as exc:   # pragma: no cover
    AVAILABLE["order-sign"] = f"not available: {exc}"


@router.post("/bare/order-sign")
async def bare_order_sign(request: Request) -> Response:
    """The bare floor: read and parse the body as JSON, nothing else (no model): what any JSON service pays."""
    json.loads(await request.body())
    return Response(b'{"cards":[]}', media_type="application/json")


AVAILABLE["bare-order-sign"] = "ok"


@router.get("/pid")
async def pid() -> int:
    return os.getpid()     # lets the harness see that every worker answers


@router.get("/available")
async def available() -> dict[str, str]:
    return AVAILABLE


def build() -> FastAPI:
    application = create_app()
    application.include_router(router)
    return application


app = build()
heap.settle()          # as service.main does for each worker
