"""What the routers share: the evaluator of this process and the documented error responses."""
from __future__ import annotations

from typing import Any

from fastapi import Request

from ..decision import Evaluator
from ..problems import PROBLEM_JSON, Problem


def evaluator(request: Request) -> Evaluator:
    return request.app.state.evaluator


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem+json error responses."""
    text = {400: "Malformed request body", 401: "No valid credential", 403: "Credential lacks the scope",
            404: "Not found", 413: "Request body too large",
            422: "Invalid request: the problem names each offending field", 503: "Not ready or engine failure"}
    return {s: {"description": text[s], "model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}
