"""The CDS Hooks router: GET /cds-services, POST /cds-services/{id} for each service, POST .../feedback, and
GET /v1/cds-hooks/feedback-summary (override analytics, audit-read scope). install() wires the JWT check."""
import asyncio
import datetime as dt
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from ..audit.feedback import FeedbackWrite
from ..audit.jti import JtiStore
from ..core.decision import Decision, Evaluator
from ..knowledge.base import KnowledgeBase
from ..settings import Settings
from ..web.auth import Principal, require
from ..web.decision_log import record_decision, record_feedback
from ..web.dependencies import evaluator
from ..web.problems import FHIR_JSON, error_responses, outcome_response, problem_response
from ..web.urls import base_url
from . import cards, fhir
from .feedback import IssuedCard, IssuedCards, rows_of, summary
from .fhir_mapping import (Mapped, build_context, data_needs, procedure_references, read_drafts,
                           unresolved_medication_references)
from .models import (AppointmentBookRequest, Card, CdsResponse, Discovery, FeedbackReceipt, FeedbackRequest,
                     FeedbackSummary, HookRequestBase, OperationOutcome, OrderSelectRequest, OrderSignRequest,
                     PatientViewRequest)
from .prefetch import FhirClient, Gatherer, PreconditionFailed, usable_server, why_no_server
from .security import CdsJwtMiddleware, JwtVerifier, load_issuers
from .services import (APPOINTMENTS, MEDICATION_REQUESTS, MEDICATION_STATEMENTS, SERVICE_IDS, SERVICE_REQUESTS,
                       ServiceDefinition, services_for)

log = logging.getLogger("ldn.cds_hooks")
router = APIRouter(tags=["cds-hooks"])

_jwt = HTTPBearer(auto_error=False, scheme_name="cdsHooksJwt", bearerFormat="JWT",
                  description="CDS Hooks client JWT (ES384/RS384, aud = the exact URL called). Required when "
                              "trusted issuers are configured (CDS_ISSUERS_FILE); the embedded default is open.")
# The security requirement is optional ({}): it depends on the deployment's configuration.
_AUTH: dict[str, Any] = {"dependencies": [Security(_jwt)], "openapi_extra": {"security": [{}]}}
_UNAUTHORIZED = {401: {"description": "Missing or invalid CDS Hooks JWT (empty body)."}}
_PRECONDITION = {412: {"model": OperationOutcome, "content": {FHIR_JSON: {}},
                       "description": "Data the service needs (the patient's active MedicationRequests) was neither "
                                      "prefetched nor retrievable from fhirServer."}}


def outcomes(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for errors under /cds-services: OperationOutcome, application/fhir+json."""
    return {s: {**entry, "model": OperationOutcome, "content": {FHIR_JSON: {}}}
            for s, entry in error_responses(*statuses).items()}


def csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def install(app: Any, settings: Settings) -> None:
    """Trusted issuers loaded (a broken issuers file stops start-up) and the JWT middleware added."""
    app.state.cds_jwt_verifier = JwtVerifier(load_issuers(settings.cds_issuers_file),
                                             leeway_s=settings.cds_jwt_leeway_s,
                                             max_lifetime_s=settings.cds_jwt_max_lifetime_s,
                                             jwks_cache_s=settings.cds_jwks_cache_s,
                                             # one replay check for every worker and replica: the audit database
                                             replay=JtiStore(app.state.auditor.store.engine,
                                                             settings.cds_jwt_leeway_s),
                                             required=settings.cds_issuers_file is not None)
    app.state.cds_http_transport = None          # tests put a local stub here: no network in tests
    app.add_middleware(CdsJwtMiddleware)


async def evaluation_date() -> dt.date:
    """The date every hook evaluation's day arithmetic uses: today, UTC. (A dependency: tests fix it.)"""
    return dt.datetime.now(dt.timezone.utc).date()


@router.get("/cds-services", response_model=Discovery, response_model_exclude_none=True,
            responses=_UNAUTHORIZED, summary="CDS Hooks discovery: the LDN services and their prefetch templates",
            **_AUTH)
async def discovery(ev: Evaluator = Depends(evaluator)) -> Discovery:
    return Discovery(services=[s.discovery() for s in services_for(ev.kb.clinical_codes).values()])


def _fhir_client(req: HookRequestBase, request: Request) -> tuple[FhirClient | None, str | None]:
    """A client for the request's fhirServer when it is allowed and authorized; else None and why there is none."""
    settings: Settings = request.app.state.settings
    allowlist = csv(settings.cds_fhir_servers)
    server = usable_server(req.fhirServer, allowlist) if req.fhirAuthorization else None
    if server is None:
        return None, why_no_server(req.fhirServer, allowlist, req.fhirAuthorization is not None)
    return FhirClient(server, req.fhirAuthorization.access_token.get_secret_value(),  # type: ignore[union-attr]
                      timeout=settings.cds_fhir_timeout_s, transport=request.app.state.cds_http_transport), None


async def _map_request(service: ServiceDefinition, context: dict[str, Any], index: fhir.ResourceIndex,
                       gatherer: Gatherer, kb: KnowledgeBase, today: dt.date) -> tuple[Mapped, list[str]] | None:
    """The hook's drafts and the record they need, as the core's context (and the keys fetched from the FHIR
    server); None when nothing in the request concerns LDN. PreconditionFailed when required data is missing."""
    own = fhir.resources(context.get("draftOrders")) + fhir.resources(context.get("appointments"))
    references = unresolved_medication_references(own, index) + procedure_references(own, index)
    if references:
        await gatherer.resolve(references)
    drafts = read_drafts(service.hook, context, index, kb.terminology, kb.clinical_codes, today)
    if not drafts.scope:
        return None
    gathered = await gatherer.gather(*data_needs(drafts.scope, kb.rules.values()))
    record = [r for k in (MEDICATION_REQUESTS, MEDICATION_STATEMENTS) for r in gathered.record.get(k) or []]
    planned = [r for k in (APPOINTMENTS, SERVICE_REQUESTS) for r in gathered.record.get(k) or []]
    references = unresolved_medication_references(record, index) + procedure_references(planned, index)
    if references:
        await gatherer.resolve(references)
    return build_context(drafts, gathered.record, index, kb.terminology, kb.clinical_codes), gathered.fetched


def _record(request: Request, service: ServiceDefinition, req: HookRequestBase, decision: Decision,
            rendered: list[tuple[Card, str, str]], started: float) -> None:
    """The issued cards for the override analytics, and the decision for the audit log and the metrics."""
    if rendered:     # queued for the bounded writer: the clinician never waits for the analytics' database
        request.app.state.auditor.submit_cds(IssuedCards(service.id, req.hookInstance, tuple(
            IssuedCard(c.uuid, rule, version, c.indicator) for c, rule, version in rendered)))
    record_decision(request, decision, id=str(uuid.uuid4()), channel="cds-hooks", started=started,
                    patient_id=req.context.patientId, outcome=f"{len(rendered)} cards",  # type: ignore[attr-defined]
                    caller=getattr(request.state, "cds_caller", None),
                    detail={"service": service.id, "hook": service.hook, "hook_instance": req.hookInstance,
                            "cards": [{"uuid": c.uuid, "rule_id": rule, "indicator": c.indicator}
                                      for c, rule, _ in rendered]})


async def run_hook(service_id: str, req: HookRequestBase, request: Request, ev: Evaluator, today: dt.date) -> Any:
    started = time.perf_counter()
    service = services_for(ev.kb.clinical_codes)[service_id]
    context: dict[str, Any] = req.context.model_dump()             # type: ignore[attr-defined]
    index = fhir.ResourceIndex()
    for key in ("draftOrders", "appointments"):
        index.add_bundle(context.get(key))
    client, no_server = _fhir_client(req, request)
    try:
        found = await _map_request(service, context, index, Gatherer(req, service, index, client, no_server),
                                   ev.kb, today)
    except PreconditionFailed as exc:
        log.warning("cds hook 412", extra={"fields": {"service": service.id, "missing": sorted(exc.missing)}})
        return JSONResponse(exc.outcome().model_dump(exclude_none=True), status_code=412, media_type=FHIR_JSON)
    finally:
        if client is not None:
            await client.__aexit__(None, None, None)
    if found is None:
        log.info("cds hook answered", extra={"fields": {"service": service.id, "cards": 0, "scope": "none"}})
        return _answer(CdsResponse(cards=[]))
    mapped, fetched = found
    decision = ev.evaluate(mapped.context, today)     # inline: CPU-bound and serialised by the engine lock
    rendered = cards.render(decision, mapped, ev.kb, hook_instance=req.hookInstance, base=base_url(request),
                            patient_id=req.context.patientId,                      # type: ignore[attr-defined]
                            include_info=req.wants_info_cards())
    _record(request, service, req, decision, rendered, started)
    log.info("cds hook answered", extra={"fields": {
        "service": service.id, "scope": ",".join(sorted(mapped.drafts.scope)), "cards": len(rendered),
        "indicators": [c.indicator for c, _, _ in rendered], "fetched": fetched}})
    return _answer(CdsResponse(cards=[c for c, _, _ in rendered]))


def _answer(response: CdsResponse) -> Response:
    """The model's own JSON, sent as it is: the cards were validated as they were built, and FastAPI's
    response_model would validate and serialise them again (through a dict and json.dumps)."""
    return Response(response.model_dump_json(exclude_none=True), media_type="application/json")


_HOOK = dict(response_model=CdsResponse, response_model_exclude_none=True,
             responses={**outcomes(400, 413, 422, 503), **_UNAUTHORIZED, **_PRECONDITION}, **_AUTH)


@router.post("/cds-services/ldn-order-select", summary="order-select: a draft LDN or opioid order", **_HOOK)
async def order_select(body: OrderSelectRequest, request: Request,
                       ev: Evaluator = Depends(evaluator),
                       today: dt.date = Depends(evaluation_date)) -> Any:
    return await run_hook("ldn-order-select", body, request, ev, today)


@router.post("/cds-services/ldn-order-sign", summary="order-sign: a draft LDN or opioid order", **_HOOK)
async def order_sign(body: OrderSignRequest, request: Request,
                     ev: Evaluator = Depends(evaluator),
                     today: dt.date = Depends(evaluation_date)) -> Any:
    return await run_hook("ldn-order-sign", body, request, ev, today)


@router.post("/cds-services/ldn-appointment-book", summary="appointment-book: surgery for a patient on LDN",
             **_HOOK)
async def appointment_book(body: AppointmentBookRequest, request: Request,
                           ev: Evaluator = Depends(evaluator),
                           today: dt.date = Depends(evaluation_date)) -> Any:
    return await run_hook("ldn-appointment-book", body, request, ev, today)


@router.post("/cds-services/ldn-patient-view", summary="patient-view: standing problems of a patient on LDN",
             **_HOOK)
async def patient_view(body: PatientViewRequest, request: Request,
                       ev: Evaluator = Depends(evaluator),
                       today: dt.date = Depends(evaluation_date)) -> Any:
    return await run_hook("ldn-patient-view", body, request, ev, today)


@router.post("/cds-services/{service_id}/feedback", response_model=FeedbackReceipt,
             responses={**outcomes(400, 404, 413, 422, 503), **_UNAUTHORIZED},
             summary="Feedback on cards (accepted / overridden): stored idempotently", **_AUTH)
async def feedback(service_id: str, body: FeedbackRequest, request: Request) -> Any:
    """async, and the write goes through the bounded writer: a slow or hung database costs this call a 503 after
    CDS_FEEDBACK_TIMEOUT_S (send it again: storage is idempotent), never a thread or the probes."""
    if service_id not in SERVICE_IDS:
        raise HTTPException(404, "no CDS Service with this id")
    loop = asyncio.get_running_loop()
    stored_counts: asyncio.Future[tuple[int, int]] = loop.create_future()

    def _resolve(counts: tuple[int, int]) -> None:
        if not stored_counts.done():
            stored_counts.set_result(counts)

    write = FeedbackWrite(rows_of(service_id, body.feedback),
                          done=lambda counts: loop.call_soon_threadsafe(_resolve, counts))
    try:
        if not request.app.state.auditor.submit_cds(write):
            raise asyncio.TimeoutError
        stored, duplicates = await asyncio.wait_for(stored_counts, request.app.state.settings.cds_feedback_timeout_s)
    except asyncio.TimeoutError:
        log.error("feedback not stored in time", extra={"fields": {"service": service_id}})
        return outcome_response(503, "Feedback not stored", "The feedback store is unavailable; send it again.")
    record_feedback(request, service_id, body.feedback)
    log.info("cds feedback", extra={"fields": {"service": service_id, "received": len(body.feedback),
                                               "stored": stored, "duplicates": duplicates}})
    return FeedbackReceipt(received=len(body.feedback), stored=stored, duplicates=duplicates)


@router.get("/v1/cds-hooks/feedback-summary", response_model=FeedbackSummary,
            responses=error_responses(401, 403, 503), summary="Override analytics of CDS Hooks cards, per service and rule")
def feedback_summary(request: Request, service_id: str | None = Query(None, max_length=64),
                     principal: Principal = Depends(require("audit-read"))) -> Any:
    auditor = request.app.state.auditor
    auditor.cds_writer.flush(timeout=2.0)        # this worker's own recent cards and feedback first
    try:
        return summary(auditor.feedback, service_id)
    except Exception as exc:
        log.error("feedback summary failed", extra={"fields": {"error": type(exc).__name__}})
        return problem_response(503, "Feedback store unavailable", "The feedback store could not be read.")
