"""Access to /v1/*: API keys (stored hashed, with scopes) or bearer JWTs from configured issuers.

With neither configured the service is open (the embedded default on 127.0.0.1, announced at start-up; refused
with LDN_ENV=production). CDS Hooks has its own JWT scheme (service/cds_hooks/security.py).
Failures are 401 (no or bad credentials) or 403 (valid, but without the scope), as problem+json that says
nothing about why a credential was refused.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jwt
import yaml
from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

SCOPES = ("evaluate", "order-check", "audit-read")
ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]      # asymmetric only: no "none", no shared-secret HS*
LEEWAY_S = 30
DEFAULT_MAX_LIFETIME_S = 3600.0   # AUTH_JWT_MAX_LIFETIME_S: a stolen token is useful for at most this long


@dataclass(frozen=True)
class Principal:
    id: str                    # API key id or "iss|sub": safe to log and to audit, never a secret
    scopes: frozenset[str]


class AuthConfigError(ValueError):
    pass


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Issuer:
    audience: str
    keys: jwt.PyJWKSet


def _finite_time(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class Authenticator:
    def __init__(self, api_keys: dict[str, Principal], issuers: dict[str, Issuer], *,
                 max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S, configured: bool = False):
        self._keys = api_keys           # key hash -> principal
        self._issuers = issuers
        self._max_lifetime_s = max_lifetime_s
        self._configured = configured   # a keys or issuers file was given: closed even while it lists nobody

    @property
    def enabled(self) -> bool:
        return bool(self._keys or self._issuers or self._configured)

    @classmethod
    def from_files(cls, api_keys_file: Path | None, issuers_file: Path | None, *,
                   max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S) -> "Authenticator":
        keys: dict[str, Principal] = {}
        if api_keys_file:
            doc = _load(api_keys_file)
            for i, entry in enumerate(doc.get("keys") or []):
                try:
                    key_hash, key_id, scopes = entry["sha256"], entry["id"], frozenset(entry.get("scopes") or ())
                except (KeyError, TypeError) as exc:
                    raise AuthConfigError(f"{api_keys_file}: keys[{i}] needs id and sha256") from exc
                if not str(key_hash).startswith("sha256:") or not scopes <= set(SCOPES):
                    raise AuthConfigError(f"{api_keys_file}: keys[{i}]: sha256:<hex> and scopes from {SCOPES}")
                keys[key_hash] = Principal(key_id, scopes)
        issuers: dict[str, Issuer] = {}
        if issuers_file:
            doc = _load(issuers_file)
            for iss, entry in (doc.get("issuers") or {}).items():
                jwks = _load(Path(issuers_file).parent / entry["jwks_file"])
                issuers[iss] = Issuer(audience=entry["audience"], keys=jwt.PyJWKSet.from_dict(jwks))
        return cls(keys, issuers, max_lifetime_s=max_lifetime_s, configured=bool(api_keys_file or issuers_file))

    def authenticate(self, api_key: str | None, bearer: str | None) -> Principal | None:
        if api_key:
            return self._keys.get(hash_key(api_key))
        if bearer:
            return self._verify_jwt(bearer)
        return None

    def _verify_jwt(self, token: str) -> Principal | None:
        try:
            header = jwt.get_unverified_header(token)
            issuer_name = jwt.decode(token, options={"verify_signature": False}).get("iss")
            issuer = self._issuers.get(issuer_name)
            if issuer is None or header.get("alg") not in ALGORITHMS:
                return None
            key = next((k for k in issuer.keys.keys if k.key_id == header.get("kid")), None)
            if key is None and len(issuer.keys.keys) == 1 and not header.get("kid"):
                key = issuer.keys.keys[0]
            if key is None:
                return None
            claims = jwt.decode(token, key=key, algorithms=ALGORITHMS, audience=issuer.audience, issuer=issuer_name,
                                leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError):   # PyJWT's int() of an infinite exp
            return None
        if not all(_finite_time(claims.get(c)) for c in ("exp", "iat", "nbf")):
            return None
        if float(claims["exp"]) - time.time() > self._max_lifetime_s + LEEWAY_S:
            return None                 # a token valid for longer than the deployment allows
        scopes = claims.get("scope") or claims.get("scp") or ""
        scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
        return Principal(f"{issuer_name}|{claims['sub']}", frozenset(s for s in scopes if s in SCOPES))


def _load(path: Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(text) if str(path).endswith(".json") else (yaml.safe_load(text) or {})


_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key issued to the caller.")
_bearer = HTTPBearer(auto_error=False, description="A JWT from a configured issuer.")
ANONYMOUS = Principal("anonymous", frozenset(SCOPES))


def require(scope: str | None) -> Callable[..., Any]:
    """A dependency: the caller must present a credential (and hold `scope`, when given). The two credential
    readers are Security sub-dependencies, so the contract declares both schemes on every route that uses it."""
    async def dependency(request: Request, api_key: str | None = Security(_api_key),
                         bearer: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
        auth: Authenticator = request.app.state.authenticator
        if not auth.enabled:
            principal = ANONYMOUS
        else:
            principal = auth.authenticate(api_key, bearer.credentials if bearer else None)
            if principal is None:
                raise HTTPException(401, "A valid API key (X-API-Key) or bearer token is required.",
                                    headers={"WWW-Authenticate": "Bearer"})
            if scope is not None and scope not in principal.scopes:
                raise HTTPException(403, f"This credential does not grant the '{scope}' scope.")
        request.state.principal = principal
        return principal
    return dependency
