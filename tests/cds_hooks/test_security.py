"""CDS Hooks JWTs: tokens minted with the sandbox's published test key pass; the spec's expired example, a wrong
aud or iss, a replayed jti, alg none and HS256 get 401 with an empty body. Plus jku, RS384, skew, CORS."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.app import create_app
from service.audit.jti import JtiStore
from service.audit.store import make_engine
from service.cds_hooks.security import CdsSecurityConfigError, JwtVerifier, Unauthorized, load_issuers
from service.settings import Settings

from .support import (EXAMPLES, FhirStub, example, hook_request, ldn_draft, make_client, oxycodone,
                                post_hook)

SANDBOX = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SPEC_ISS = "https://fhir-ehr.example.com/"
SPEC_JKU = "https://fhir-ehr.example.com/jwk_uri"
RSA_ISS = "https://epic.hospital.example/fhir"
BASE = "http://testserver"
SIGN = f"{BASE}/cds-services/ldn-order-sign"
SANDBOX_KEY = example("sandbox-jwk-keypair-PUBLIC-TEST-KEY.json")["keys"][0]
EXPIRED = (EXAMPLES / "spec3-jwt-example-ES384.txt").read_text().strip()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuers_file(tmp_path_factory, rsa_key):
    d = tmp_path_factory.mktemp("cds-issuers")
    (d / "sandbox-jwks.json").write_text((EXAMPLES / "sandbox-jwks-public.json").read_text())
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    public.update(kid="epic-1", alg="RS384", use="sig")
    (d / "epic-jwks.json").write_text(json.dumps({"keys": [public]}))
    (d / "issuers.yaml").write_text(yaml.safe_dump({"issuers": {
        SANDBOX: {"jwks_file": "sandbox-jwks.json", "jku": [SANDBOX_JKU]},
        SPEC_ISS: {"jku": [SPEC_JKU]},
        RSA_ISS: {"jwks_file": "epic-jwks.json", "tenants": ["hospital-a"]}}}))
    return d / "issuers.yaml"


@pytest.fixture(scope="module")
def jwks_server():
    return FhirStub({"/.well-known/jwks.json": example("sandbox-jwks-public.json"),
                     "/jwk_uri": example("spec3-jwks-public.json")})


@pytest.fixture(scope="module")
def client(evaluator, issuers_file, jwks_server):
    c = make_client(evaluator, Settings(cds_issuers_file=issuers_file, cors_origins="https://sandbox.cds-hooks.org"))
    c.app.state.cds_jwt_verifier.transport = jwks_server
    return c


def mint(aud: str = SIGN, *, iss: str = SANDBOX, key=None, alg: str = "ES384", headers=None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    if key is None:
        key = jwt.PyJWK(SANDBOX_KEY).key
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": SANDBOX_KEY["kid"], **(headers or {})})


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.content == b""                                   # nothing for an attacker to learn
    assert response.headers["www-authenticate"] == "Bearer"


def _order(client, token: str) -> httpx.Response:
    body = hook_request("order-sign", prefetch={"medicationRequests": None})
    return post_hook(client, "ldn-order-sign", body, headers=bearer(token))


def test_sandbox_test_key_tokens_are_accepted_on_every_call(client):
    assert client.get("/cds-services", headers=bearer(mint(f"{BASE}/cds-services"))).status_code == 200
    assert _order(client, mint()).json() == {"cards": []}
    feedback = example("spec3-feedback-accepted.json")
    url = f"{BASE}/cds-services/ldn-order-sign/feedback"                 # the sandbox's aud for feedback
    assert client.post(url, json=feedback, headers=bearer(mint(url))).status_code == 200


def test_no_token_is_refused_everywhere(client):
    _refused(client.get("/cds-services"))
    _refused(client.post("/cds-services/ldn-order-sign", json={}))
    _refused(client.post("/cds-services/ldn-order-sign/feedback", json={}))
    _refused(client.post("/cds-services/no-such-service", json={}))      # nothing is disclosed before auth
    _refused(client.get("/cds-services", headers={"Authorization": "Basic dXNlcjpwdw=="}))
    assert client.get("/healthz").status_code == 200                      # the native API is not CDS Hooks'


def test_the_spec_example_token_is_expired(client):
    _refused(client.get("/cds-services", headers=bearer(EXPIRED)))


def test_the_spec_example_token_fails_only_for_expiry(jwks_server, issuers_file):
    """The example verifies against the spec's JWK Set (via its allow-listed jku); only its exp (2015) fails it."""
    assert jwt.get_unverified_header(EXPIRED) == example("spec3-jwt-header.json")
    url = example("spec3-jwt-payload.json")["aud"]
    now = JwtVerifier(load_issuers(issuers_file), transport=jwks_server)
    with pytest.raises(Unauthorized) as refused:
        asyncio.run(now.verify(EXPIRED, url))
    assert refused.value.reason == "expired"
    back_then = JwtVerifier(load_issuers(issuers_file), transport=jwks_server, clock=lambda: 1400000000.0,
                            max_lifetime_s=10 ** 9)
    assert asyncio.run(back_then.verify(EXPIRED, url)) == example("spec3-jwt-payload.json")
    with pytest.raises(Unauthorized) as replay:
        asyncio.run(back_then.verify(EXPIRED, url))
    assert replay.value.reason == "replayed jti"


def test_a_fresh_token_from_the_spec_example_key_is_accepted(client):
    private = jwt.PyJWK(example("spec3-jwk-private-EXAMPLE-ONLY.json")).key
    token = jwt.encode({"iss": SPEC_ISS, "aud": SIGN, "exp": int(time.time()) + 60, "iat": int(time.time()),
                        "jti": str(uuid.uuid4())}, private, algorithm="ES384",
                       headers={"kid": "example-kid", "jku": SPEC_JKU})
    assert _order(client, token).status_code == 200


@pytest.mark.parametrize("case", ["wrong aud", "aud of another service", "discovery aud on a service",
                                  "wrong iss", "no jti", "no iat", "expired", "issued in the future",
                                  "not yet valid", "lives too long", "tampered", "unknown kid"])
def test_bad_tokens_are_refused(client, case):
    token = {
        "wrong aud": lambda: mint("https://cds.example.org/cds-services/ldn-order-sign"),
        "aud of another service": lambda: mint(f"{BASE}/cds-services/ldn-order-select"),
        "discovery aud on a service": lambda: mint(f"{BASE}/cds-services"),
        "wrong iss": lambda: mint(iss="https://evil.example"),
        "no jti": lambda: mint(jti=None),
        "no iat": lambda: mint(iat=None),
        "expired": lambda: mint(exp=int(time.time()) - 120, iat=int(time.time()) - 400),
        "issued in the future": lambda: mint(iat=int(time.time()) + 600, exp=int(time.time()) + 900),
        "not yet valid": lambda: mint(nbf=int(time.time()) + 600),
        "lives too long": lambda: mint(exp=int(time.time()) + 86400),
        "tampered": lambda: mint()[:-6] + "AAAAAA",
        "unknown kid": lambda: mint(headers={"kid": "not-a-known-kid"}),
    }[case]()
    _refused(client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(token)))


def test_epic_style_nbf_and_small_skew_are_accepted(client):
    now = int(time.time())
    assert _order(client, mint(nbf=now - 300, iat=now + 10, sub="epic-client")).status_code == 200


def test_a_replayed_jti_is_refused(client):
    token = mint()
    assert _order(client, token).status_code == 200
    _refused(client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(token)))


def test_alg_none_and_hmac_are_refused(client):
    now = int(time.time())
    claims = {"iss": SANDBOX, "aud": SIGN, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": SANDBOX_KEY["kid"]})
    # HS256 keyed with the issuer's *public* key: the classic algorithm-confusion forgery.
    # (PyJWT refuses to sign that, so it is forged by hand.)
    public_as_secret = json.dumps(example("sandbox-jwks-public.json")["keys"][0]).encode()
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in (
        {"alg": "HS256", "typ": "JWT", "kid": SANDBOX_KEY["kid"]}, claims))
    hmac_token = (signing_input + b"." + _b64(hmac.new(public_as_secret, signing_input, hashlib.sha256).digest())
                  ).decode()
    es256 = mint(alg="ES256", key=ec.generate_private_key(ec.SECP256R1()))      # allowed by no one here
    for token in (unsigned, hmac_token, es256):
        _refused(client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(token)))


def test_rs384_with_tenant(client, rsa_key):
    def rs(tenant):
        return mint(iss=RSA_ISS, key=rsa_key, alg="RS384", headers={"kid": "epic-1"}, tenant=tenant)
    assert _order(client, rs("hospital-a")).status_code == 200
    _refused(client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(rs("b"))))
    _refused(client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(rs(None))))


def test_jku_must_be_allow_listed_and_is_cached(client, jwks_server):
    _refused(client.get("/cds-services", headers=bearer(mint(f"{BASE}/cds-services",
                                                             headers={"jku": "https://evil.example/jwks.json"}))))
    before = len(jwks_server.requests)
    for _ in range(3):
        token = mint(f"{BASE}/cds-services", headers={"jku": SANDBOX_JKU})
        assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    fetched = [r for r in jwks_server.requests[before:] if r.url.path == "/.well-known/jwks.json"]
    assert len(fetched) <= 1 and not any(r.url.host == "evil.example" for r in jwks_server.requests)


def test_tokens_are_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    good, bad = mint(), mint(iss="https://evil.example")
    _order(client, good)
    client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign"), headers=bearer(bad))
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "CDS Hooks JWT refused" in text
    assert good not in text and bad not in text and good.split(".")[1] not in text


def test_a_replay_store_that_cannot_answer_refuses(evaluator, issuers_file, tmp_path, caplog):
    """The shared jti store cannot tell (here: a database without its table): the token is refused, never let
    through unchecked."""
    c = make_client(evaluator, Settings(cds_issuers_file=issuers_file))
    engine = make_engine(f"sqlite:///{tmp_path}/not-migrated.db")
    assert isinstance(c.app.state.cds_jwt_verifier.replay, JtiStore)     # the service's: the shared one
    c.app.state.cds_jwt_verifier.replay = JtiStore(engine)
    try:
        _refused(_order(c, mint()))
    finally:
        engine.dispose()
    assert any(getattr(r, "fields", {}).get("reason") == "replay store unavailable" for r in caplog.records)


def test_open_without_trusted_issuers(evaluator):
    open_client = make_client(evaluator)
    assert open_client.get("/cds-services").status_code == 200


def test_private_keys_in_a_jwks_file_stop_start_up(tmp_path, evaluator):
    (tmp_path / "keys.json").write_text((EXAMPLES / "sandbox-jwk-keypair-PUBLIC-TEST-KEY.json").read_text())
    (tmp_path / "issuers.yaml").write_text(yaml.safe_dump({"issuers": {SANDBOX: {"jwks_file": "keys.json"}}}))
    with pytest.raises(CdsSecurityConfigError, match="private key"):
        create_app(Settings(cds_issuers_file=tmp_path / "issuers.yaml"), evaluator=evaluator)


def test_cors_preflight_and_origin_allow_list(client):
    preflight = {"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    ok = client.options("/cds-services/ldn-order-sign", headers=preflight)
    assert ok.status_code == 200                                            # no JWT needed for a preflight
    assert ok.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert {"GET", "POST", "OPTIONS"} <= set(ok.headers["access-control-allow-methods"].replace(" ", "").split(","))
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    evil = client.options("/cds-services/ldn-order-sign", headers={**preflight, "Origin": "https://evil.example"})
    assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
    refused = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert refused.status_code == 401                                       # the browser can read the refusal
    assert refused.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"


def test_no_cors_by_default(evaluator):
    plain = make_client(evaluator)
    response = plain.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert "access-control-allow-origin" not in response.headers


def test_aud_is_the_public_url_behind_a_proxy(evaluator, issuers_file, jwks_server):
    proxied = make_client(evaluator, Settings(cds_issuers_file=issuers_file,
                                              public_base_url="https://cds.hospital.example/"))
    proxied.app.state.cds_jwt_verifier.transport = jwks_server
    public = "https://cds.hospital.example/cds-services"
    assert proxied.get("/cds-services", headers=bearer(mint(public))).status_code == 200
    _refused(proxied.get("/cds-services", headers=bearer(mint(f"{BASE}/cds-services"))))
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch={"medicationRequests": {
        "resourceType": "Bundle", "entry": [{"resource": oxycodone()}]}})
    response = post_hook(proxied, "ldn-order-sign", body, headers=bearer(mint(f"{public}/ldn-order-sign")))
    urls = {c["source"]["url"] for c in response.json()["cards"]}
    assert "https://cds.hospital.example/rules/ldn-opioid-coadministration" in urls     # card links too


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), int("9" * 320), "1900000000"])
def test_time_claims_that_are_not_finite_numbers_are_refused(client, claim, value):
    # Signed by a trusted key: NaN passes every comparison (and would defeat the replay cache); a 310-digit
    # integer overflows a float; a string is not a NumericDate.
    token = mint(**{claim: value})
    assert client.post("/cds-services/ldn-order-sign", json=hook_request("order-sign", drafts=[ldn_draft()]),
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_replay_check_goes_through_a_replaceable_guard(jwks_server, issuers_file):
    from service.cds_hooks.security import MemoryReplayGuard

    class Recording(MemoryReplayGuard):
        def __init__(self):
            super().__init__()
            self.calls: list[tuple[str, float]] = []

        def seen(self, jti, exp):
            self.calls.append((jti, exp))
            return super().seen(jti, exp)

    guard = Recording()
    verifier = JwtVerifier(load_issuers(issuers_file), transport=jwks_server, replay=guard)
    token = mint()
    asyncio.run(verifier.verify(token, SIGN))
    with pytest.raises(Unauthorized) as replay:
        asyncio.run(verifier.verify(token, SIGN))
    assert replay.value.reason == "replayed jti"
    assert len(guard.calls) == 2 and guard.calls[0][0].startswith(SANDBOX) and guard.calls[0] == guard.calls[1]
