"""RFC 9457 problem details: every error the service returns, in one shape that names the offending field."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
# Under these paths errors are FHIR OperationOutcomes (CDS Hooks 3.0 ballot: any non-2xx SHOULD carry one).
OUTCOME_PREFIXES = ("/cds-services",)
_ISSUE_CODE = {400: "structure", 404: "not-found", 405: "not-supported", 412: "processing", 413: "too-costly",
               415: "not-supported", 422: "invalid", 500: "exception", 503: "transient"}
log = logging.getLogger("ldn.problems")


def wants_outcome(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OUTCOME_PREFIXES)


def operation_outcome(status: int, text: str, *, diagnostics: str | None = None,
                      expressions: list[str] | None = None) -> dict[str, Any]:
    """A FHIR R4 OperationOutcome for an HTTP error: one issue, severity error, the code by status."""
    issue: dict[str, Any] = {"severity": "error", "code": _ISSUE_CODE.get(status, "processing"),
                             "details": {"text": text}}
    if diagnostics:
        issue["diagnostics"] = diagnostics
    if expressions:
        issue["expression"] = expressions
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(status: int, title: str, detail: str | None = None, *, errors: list[FieldError] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """The OperationOutcome counterpart of problem_response: the same error, as FHIR JSON."""
    body = operation_outcome(status, f"{title}: {detail}" if detail else title,
                             diagnostics="; ".join(f"{e.field}: {e.message}" for e in errors) if errors else None,
                             expressions=list(dict.fromkeys(e.field for e in errors)) if errors else None)
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. medications[0].status.")
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_response(status: int, title: str, detail: str | None = None, *,
                     errors: list[FieldError] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'medications', 0, 'status') -> 'medications[0].status'."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-after"))]
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append(FieldError(field=field_path(loc), message=message))
    return errors


def error_response(request: Request, status: int, title: str, detail: str | None = None, *,
                   errors: list[FieldError] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """problem+json, or an OperationOutcome under OUTCOME_PREFIXES."""
    render = outcome_response if wants_outcome(request.url.path) else problem_response
    return render(status, title, detail, errors=errors, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e.message.startswith("JSON decode error") for e in errors):
            return error_response(request, 400, "Malformed JSON", "The request body is not valid JSON.",
                                  errors=errors)
        first = errors[0]
        return error_response(request, 422, "Invalid request", f"{first.field}: {first.message}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large",
                  415: "Unsupported media type"}
        return error_response(request, exc.status_code, titles.get(exc.status_code, "Error"),
                              exc.detail if isinstance(exc.detail, str) else None,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: messages can carry request content.
        log.error("unhandled error %s on %s", type(exc).__name__, request.url.path)
        return error_response(request, 500, "Internal error",
                              "The request could not be evaluated; no advice was given.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem+json error responses."""
    text = {400: "Malformed request body", 401: "No valid credential", 403: "Credential lacks the scope",
            404: "Not found", 413: "Request body too large",
            422: "Invalid request: the problem names each offending field", 503: "Not ready or engine failure"}
    return {s: {"description": text[s], "model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}
