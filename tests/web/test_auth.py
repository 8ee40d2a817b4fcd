"""/v1/* access: API keys (hashed, scoped) and bearer JWTs from configured issuers; open only when unconfigured."""
from __future__ import annotations

import json
import time

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from service.app import create_app
from service.web.auth import hash_key
from service.settings import Settings

KEY_EVAL = "ldn_test-evaluate-key"
KEY_AUDIT = "ldn_test-audit-key"
BODY = {"ldn": {"status": "active", "dose_mg": 4.5}}
ISS = "https://idp.hospital.example"


@pytest.fixture(scope="module")
def signing_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def secured(tmp_path_factory, evaluator, signing_key):
    d = tmp_path_factory.mktemp("auth")
    (d / "keys.yaml").write_text(yaml.safe_dump({"keys": [
        {"id": "pharmacy-a", "sha256": hash_key(KEY_EVAL), "scopes": ["evaluate", "order-check"]},
        {"id": "auditor", "sha256": hash_key(KEY_AUDIT), "scopes": ["audit-read"]}]}))
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="k1", alg="ES384", use="sig")
    (d / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    (d / "issuers.yaml").write_text(yaml.safe_dump({"issuers": {ISS: {"audience": "ldn-cds", "jwks_file": "jwks.json"}}}))
    settings = Settings(api_keys_file=d / "keys.yaml", auth_issuers_file=d / "issuers.yaml")
    return TestClient(create_app(settings, evaluator=evaluator))


def token(key, **overrides):
    now = int(time.time())
    claims = {"iss": ISS, "aud": "ldn-cds", "sub": "ehr-1", "iat": now, "exp": now + 300, "scope": "evaluate"}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1"})


def test_no_credential_is_401_problem(secured):
    r = secured.post("/v1/evaluations", json=BODY)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"


def test_api_key_with_scope(secured):
    assert secured.post("/v1/evaluations", json=BODY, headers={"X-API-Key": KEY_EVAL}).status_code == 200


def test_api_key_without_the_scope_is_403(secured):
    r = secured.post("/v1/evaluations", json=BODY, headers={"X-API-Key": KEY_AUDIT})
    assert r.status_code == 403 and "evaluate" in r.json()["detail"]


def test_wrong_key_is_401_and_says_nothing_more(secured):
    r = secured.post("/v1/evaluations", json=BODY, headers={"X-API-Key": "ldn_guess"})
    assert r.status_code == 401 and "ldn_guess" not in r.text


def test_catalogue_needs_any_credential(secured):
    assert secured.get("/v1/rules").status_code == 401
    assert secured.get("/v1/rules", headers={"X-API-Key": KEY_AUDIT}).status_code == 200
    assert secured.get("/healthz").status_code == 200      # probes stay open


def test_jwt_from_a_configured_issuer(secured, signing_key):
    r = secured.post("/v1/evaluations", json=BODY, headers={"Authorization": f"Bearer {token(signing_key)}"})
    assert r.status_code == 200


@pytest.mark.parametrize("overrides", [
    {"aud": "someone-else"}, {"iss": "https://evil.example"}, {"exp": int(time.time()) - 3600},
    {"scope": "audit-read"},
])
def test_bad_jwts_are_refused(secured, signing_key, overrides):
    r = secured.post("/v1/evaluations", json=BODY,
                     headers={"Authorization": f"Bearer {token(signing_key, **overrides)}"})
    assert r.status_code == (403 if overrides.get("scope") else 401)


def test_other_keys_and_hs256_are_refused(secured):
    other = ec.generate_private_key(ec.SECP384R1())
    assert secured.post("/v1/evaluations", json=BODY,
                        headers={"Authorization": f"Bearer {token(other)}"}).status_code == 401
    hs = jwt.encode({"iss": ISS, "aud": "ldn-cds", "sub": "x", "exp": int(time.time()) + 60, "scope": "evaluate"},
                    "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256")
    assert secured.post("/v1/evaluations", json=BODY, headers={"Authorization": f"Bearer {hs}"}).status_code == 401
    unsigned = jwt.encode({"iss": ISS, "aud": "ldn-cds", "sub": "x", "exp": int(time.time()) + 60,
                           "scope": "evaluate"}, None, algorithm="none")
    assert secured.post("/v1/evaluations", json=BODY,
                        headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401


def test_unconfigured_service_is_open(client):
    assert client.post("/v1/evaluations", json=BODY).status_code == 200


def _bearer(signing_key, **claims) -> dict[str, str]:
    now = int(time.time())
    payload = {"iss": ISS, "aud": "ldn-cds", "sub": "svc", "scope": "evaluate", "exp": now + 300, "iat": now,
               **claims}
    return {"Authorization": "Bearer " + jwt.encode(payload, signing_key, algorithm="ES384", headers={"kid": "k1"})}


def test_v1_jwt_lifetime_is_bounded(secured, signing_key):
    now = int(time.time())
    assert secured.post("/v1/evaluations", json=BODY, headers=_bearer(signing_key)).status_code == 200
    long_lived = _bearer(signing_key, exp=now + 30 * 86400)               # a month: beyond the 1 h default
    assert secured.post("/v1/evaluations", json=BODY, headers=long_lived).status_code == 401


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), int("9" * 320)])
def test_v1_jwt_time_claims_must_be_finite(secured, signing_key, claim, value):
    response = secured.post("/v1/evaluations", json=BODY, headers=_bearer(signing_key, **{claim: value}))
    assert response.status_code == 401


def test_a_keys_file_that_lists_nobody_is_closed_not_open(tmp_path, evaluator):
    """An empty API_KEYS_FILE (a fresh `keys:` file) and an empty CDS_ISSUERS_FILE refuse everyone: configuring
    authentication never falls back to the open embedded default."""
    (tmp_path / "keys.yaml").write_text("keys:\n")
    (tmp_path / "issuers.yaml").write_text("issuers: {}\n")
    client = TestClient(create_app(Settings(api_keys_file=tmp_path / "keys.yaml",
                                            cds_issuers_file=tmp_path / "issuers.yaml"), evaluator=evaluator))
    assert client.post("/v1/evaluations", json={"ldn": {"status": "active", "dose_mg": 4.5}}).status_code == 401
    assert client.get("/v1/rules").status_code == 401
    assert client.get("/cds-services").status_code == 401
    assert client.get("/healthz").status_code == 200
