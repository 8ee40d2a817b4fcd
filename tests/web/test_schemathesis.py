"""schemathesis against the served contract (which equals openapi.yaml, see test_contract), in-process.

Valid and invalid bodies for every operation; all of schemathesis' checks are on: no 5xx, responses match the
contract's schemas, status codes and content types, valid data is accepted and invalid data rejected, and a
missing or wrong credential is refused. The app runs as production would: with authentication configured."""
from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.web.auth import SCOPES, hash_key
from service.settings import Settings

API_KEY = "ldn_schemathesis-all-scopes"
_keys = Path(tempfile.mkdtemp(prefix="ldn-st-")) / "keys.yaml"
_keys.write_text(yaml.safe_dump({"keys": [{"id": "schemathesis", "sha256": hash_key(API_KEY),
                                           "scopes": list(SCOPES)}]}))

_app = create_app(Settings(api_keys_file=_keys))


async def _app_without_lifespan(scope, receive, send):
    """schemathesis runs the ASGI lifespan around every test while it reuses one app: each shutdown would close the
    audit writers the next tests write to, and valid feedback would then get 503 (the service runs its lifespan
    once, at exit). The lifespan is acknowledged here and not passed on."""
    if scope["type"] != "lifespan":
        return await _app(scope, receive, send)
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


schema = schemathesis.openapi.from_asgi("/openapi.json", _app_without_lifespan)


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_contract(case):
    case.call_and_validate(headers={"X-API-Key": API_KEY})
