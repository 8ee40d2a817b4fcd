"""The contract: the OpenAPI document the code implies (tests compare it with openapi.yaml), and the committed
openapi.yaml that the running service serves as-is."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..knowledge.base import PROJECT_ROOT
from . import openapi_doc, problems

CONTRACT = PROJECT_ROOT / "openapi.yaml"
TITLE = "LDN decision support"
API_VERSION = "1.0.0"
DESCRIPTION = ("Clinical decision support for low-dose naltrexone (LDN): declarative rules drawn from four source "
               "documents, run by durable-rules, answering with advisories that cite the exact source passages.")


def generated_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document the code implies; tests compare it with the committed contract.

    Every error response is RFC 9457 problem+json: FastAPI's default 422 schema (HTTPValidationError) is
    replaced, since our handler never sends that shape."""
    doc = get_openapi(title=TITLE, version=API_VERSION, description=DESCRIPTION, routes=app.routes)
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                # Only the errors our problem handlers send: not those with another body (CDS Hooks' 412
                # OperationOutcome) or none at all (CDS Hooks' 401).
                ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                if status[0] in "45" and ref.rsplit("/", 1)[-1] in ("Problem", "HTTPValidationError"):
                    response["content"] = {problems.PROBLEM_JSON: {"schema": dict(problem["schema"])}}
                elif status[0] in "45" and ref.rsplit("/", 1)[-1] == "OperationOutcome":   # under /cds-services
                    response["content"] = {problems.FHIR_JSON: {"schema": {"$ref": ref}}}
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    openapi_doc.annotate(doc)
    return doc


def load_contract(path: Path = CONTRACT) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def serve_contract(app: FastAPI, path: Path) -> None:
    """Serve the committed contract as-is; without one (a bare checkout of the code), the generated document."""
    contract = load_contract(path) if path.exists() else None
    app.openapi = (lambda: contract) if contract is not None else (lambda: generated_openapi(app))  # type: ignore[method-assign]
