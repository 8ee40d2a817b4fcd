"""schemathesis against the served contract (which equals openapi.yaml, see test_contract), in-process.

Valid and invalid bodies for every operation; all of schemathesis' checks are on: no 5xx, responses match the
contract's schemas, status codes and content types, valid data is accepted and invalid data rejected."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from service.app import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_contract(case):
    case.call_and_validate()
