"""Regenerate the committed contract files from the code: `make openapi`, `make schemas`.

The committed files are the contract reviewers read; tests fail when the code drifts from them, and these
commands are how an intended change is made on purpose.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def openapi_document() -> dict:
    from service.app import create_app
    from service.web.openapi import generated_openapi
    return generated_openapi(create_app())


def json_schemas() -> dict[str, dict]:
    from service.native.models import EvaluationResponse
    from service.order_checks.models import OrderCheckResponse
    from service.core.context import PatientContext
    from service.order_checks.mapping import OrderCheckRequest
    return {
        "evaluation-request.schema.json": PatientContext.model_json_schema(),
        "evaluation-response.schema.json": EvaluationResponse.model_json_schema(mode="serialization"),
        "order-check-request.schema.json": OrderCheckRequest.model_json_schema(),
        "order-check-response.schema.json": OrderCheckResponse.model_json_schema(mode="serialization"),
    }


def dump_yaml(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str]) -> int:
    if argv[1:] == ["openapi"]:
        sys.stdout.write(dump_yaml(openapi_document()))
        return 0
    if argv[1:] == ["schemas"]:
        for name, schema in json_schemas().items():
            (ROOT / "schemas" / name).write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        return 0
    print("usage: python -m tools.contract openapi|schemas", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
