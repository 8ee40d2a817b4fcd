"""openapi.yaml is the contract: the code must imply exactly it, and the service must serve exactly it."""
from __future__ import annotations

import json

from service.web.openapi import CONTRACT, generated_openapi, load_contract
from tools.contract import json_schemas

from ..conftest import ROOT


def test_code_matches_the_committed_contract(app):
    # If this fails after an intended API change, run `make openapi` and review the diff.
    assert generated_openapi(app) == load_contract(CONTRACT)


def test_service_serves_the_contract_file(client):
    assert client.get("/openapi.json").json() == load_contract(CONTRACT)


def test_json_schemas_match_the_models():
    # If this fails after an intended model change, run `make schemas` and review the diff.
    for name, schema in json_schemas().items():
        assert json.loads((ROOT / "schemas" / name).read_text()) == schema, name
