"""CDS Hooks client authentication: a signed JWT on every call (discovery, services, feedback).

With trusted issuers configured (CDS_ISSUERS_FILE), every request under /cds-services must carry
`Authorization: Bearer <JWT>` that passes, in this order (cds-hooks.org best practices):
  1. header: alg ES384 or RS384 (never `none`, never HS*), a kid, typ JWT when given;
  2. `iss` is a configured issuer;
  3. the key: from the issuer's configured JWKS file, or from the token's `jku` when that URL is on the issuer's
     allow-list (fetched, cached, refetched once on an unknown kid for key rotation); chosen by kid;
  4. signature, and `aud` equal to the exact URL called (…/cds-services, …/cds-services/{id},
     …/cds-services/{id}/feedback; behind a proxy, PUBLIC_BASE_URL says what "exact" is);
  5. `exp`, `iat` (and Epic's `nbf`) with a small clock skew; a lifetime of at most CDS_JWT_MAX_LIFETIME_S;
  6. `tenant` on the issuer's list, when it has one;
  7. `jti` not seen before by any worker or replica (kept until the token expires); a replay store that cannot
     answer fails the check (closed, never open).
Any failure: 401 with an empty body and `WWW-Authenticate: Bearer` (nothing for an attacker to learn). The log
line says which step failed and the issuer when it is a trusted one; never the token.

Time claims must be finite numbers (NaN passes every comparison; a 310-digit integer overflows a float).
The replay check goes through a ReplayGuard: `seen(jti, exp) -> bool`. The service gives every verifier the one in
the audit database (service.audit.jti.JtiStore, shared by all workers and replicas); MemoryReplayGuard, per
process, is what a verifier built without one uses.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

import httpx
import jwt
import yaml
from starlette.datastructures import URL

log = logging.getLogger("ldn.cds_hooks.security")

ALGORITHMS = ("ES384", "RS384")
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
PREFIX = "/cds-services"
MAX_JWKS_BYTES = 1024 * 1024
MIN_REFETCH_S = 30.0
MAX_REPLAY_ENTRIES = 100_000


class Unauthorized(Exception):
    def __init__(self, reason: str, issuer: str | None = None):
        super().__init__(reason)
        self.reason, self.issuer = reason, issuer


class CdsSecurityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    keys: dict[str, jwt.PyJWK]                       # kid -> key, from the configured JWKS file
    jku: tuple[str, ...] = ()                        # allow-listed JWK Set URLs
    tenants: tuple[str, ...] = ()                    # allow-listed tenants (empty: any)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise CdsSecurityConfigError(f"{path}: not a mapping")
    return doc


def parse_jwks(doc: Any, where: str) -> dict[str, jwt.PyJWK]:
    """kid -> public key. A private key in a JWK Set is a configuration error (it would be a leaked key)."""
    keys: dict[str, jwt.PyJWK] = {}
    for i, jwk in enumerate(doc.get("keys") or [] if isinstance(doc, dict) else []):
        if not isinstance(jwk, dict):
            raise CdsSecurityConfigError(f"{where}: keys[{i}] is not an object")
        if any(m in jwk for m in PRIVATE_JWK_MEMBERS):
            raise CdsSecurityConfigError(f"{where}: keys[{i}] holds private key material")
        if jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kid"), str):
            continue
        try:
            keys[jwk["kid"]] = jwt.PyJWK(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue                                # an unusable key (unknown kty): skipped, like PyJWKSet does
    return keys


def load_issuers(path: Path | None) -> dict[str, TrustedIssuer]:
    """The issuers file: {issuers: {<iss>: {jwks_file: <path relative to the file>, jku: [urls], tenants: [...]}}}."""
    if path is None:
        return {}
    doc = _read(Path(path))
    issuers: dict[str, TrustedIssuer] = {}
    for iss, entry in (doc.get("issuers") or {}).items():
        if not isinstance(entry, dict):
            raise CdsSecurityConfigError(f"{path}: issuer {iss!r} must be a mapping")
        keys: dict[str, jwt.PyJWK] = {}
        if entry.get("jwks_file"):
            jwks_path = Path(path).parent / entry["jwks_file"]
            keys = parse_jwks(_read(jwks_path), str(jwks_path))
            if not keys:
                raise CdsSecurityConfigError(f"{jwks_path}: no usable signing key with a kid")
        jku = tuple(entry.get("jku") or ())
        if not keys and not jku:
            raise CdsSecurityConfigError(f"{path}: issuer {iss!r} needs a jwks_file or a jku allow-list")
        issuers[str(iss)] = TrustedIssuer(str(iss), keys, jku, tuple(entry.get("tenants") or ()))
    return issuers


class ReplayGuard(Protocol):
    def seen(self, jti: str, exp: float) -> bool:
        """True if this jti was presented before (a replay); else remember it until `exp` (epoch seconds) and
        return False. Atomic: two concurrent calls with one jti never both get False."""
        ...


class MemoryReplayGuard:
    """The jti seen by this process, each kept until its token expires (plus the clock-skew leeway); bounded."""

    def __init__(self, leeway_s: float = 30.0, clock: Callable[[], float] = time.time,
                 max_entries: int = MAX_REPLAY_ENTRIES):
        self._leeway, self._clock, self._max = leeway_s, clock, max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, jti: str, exp: float) -> bool:
        now = self._clock()
        with self._lock:
            if jti in self._seen and self._seen[jti] + self._leeway >= now:
                return True
            if len(self._seen) >= self._max:
                self._seen = {k: v for k, v in self._seen.items() if v + self._leeway >= now}
                while len(self._seen) >= self._max:
                    self._seen.pop(next(iter(self._seen)))
            self._seen[jti] = exp
            return False


def time_claim(value: Any, name: str, iss: str, required: bool = True) -> float | None:
    """A NumericDate claim as a finite float; anything else (a string, a bool, NaN, infinity, an integer too
    large for a float) is refused."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized("time claims not numbers", iss)
    try:
        number = float(value)
    except OverflowError:
        raise Unauthorized("time claims not finite", iss) from None
    if not math.isfinite(number):
        raise Unauthorized("time claims not finite", iss)
    return number


@dataclass
class _CachedJwks:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


@dataclass
class JwtVerifier:
    issuers: dict[str, TrustedIssuer]
    leeway_s: float = 30.0
    max_lifetime_s: float = 3600.0
    jwks_cache_s: float = 3600.0
    clock: Callable[[], float] = time.time
    transport: httpx.AsyncBaseTransport | None = None      # tests: a local stub instead of the network
    replay: ReplayGuard | None = None                        # default: a MemoryReplayGuard for this process
    required: bool = False           # an issuers file was given: closed even while it trusts nobody
    _jwks: dict[str, _CachedJwks] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.replay is None:
            self.replay = MemoryReplayGuard(self.leeway_s, self.clock)

    @property
    def enabled(self) -> bool:
        return bool(self.issuers) or self.required

    async def _fetch_jwks(self, url: str) -> dict[str, jwt.PyJWK]:
        async with httpx.AsyncClient(transport=self.transport, timeout=httpx.Timeout(3.0),
                                     follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise Unauthorized("jwks unavailable")
        try:
            return parse_jwks(response.json(), "jku")
        except (ValueError, CdsSecurityConfigError) as exc:
            raise Unauthorized("jwks unusable") from exc

    async def _key(self, issuer: TrustedIssuer, header: dict[str, Any]) -> jwt.PyJWK:
        kid, jku = header["kid"], header.get("jku")
        if jku is None:
            if kid in issuer.keys:
                return issuer.keys[kid]
            if issuer.keys or len(issuer.jku) != 1:
                raise Unauthorized("unknown kid", issuer.iss)
            jku = issuer.jku[0]                      # the issuer's one configured JWK Set URL
        if not isinstance(jku, str) or jku not in issuer.jku:
            raise Unauthorized("jku not allow-listed", issuer.iss)
        now = self.clock()
        cached = self._jwks.get(jku)
        if cached is None or now - cached.fetched_at > self.jwks_cache_s or (
                kid not in cached.keys and now - cached.fetched_at > MIN_REFETCH_S):
            try:
                cached = _CachedJwks(await self._fetch_jwks(jku), now)
            except httpx.HTTPError as exc:
                raise Unauthorized("jwks unavailable", issuer.iss) from exc
            self._jwks[jku] = cached
        if kid not in cached.keys:
            raise Unauthorized("unknown kid", issuer.iss)
        return cached.keys[kid]

    async def verify(self, token: str, url: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed") from exc
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ALGORITHMS:
            raise Unauthorized("algorithm not allowed")
        if typ is not None and str(typ).upper() != "JWT":
            raise Unauthorized("typ not JWT")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no kid")
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized("issuer not trusted")
        key = await self._key(issuer, header)
        declared = getattr(key, "_jwk_data", {}).get("alg")
        if declared is not None and declared != alg:
            raise Unauthorized("key algorithm mismatch", iss)
        try:
            claims = jwt.decode(token, key=key.key, algorithms=[alg], audience=url, issuer=iss,
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                         "require": ["iss", "aud", "exp", "iat", "jti"]})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            reason = "audience" if isinstance(exc, jwt.InvalidAudienceError) else "signature or claims"
            raise Unauthorized(reason, iss) from exc
        now = self.clock()
        exp, iat = time_claim(claims.get("exp"), "exp", iss), time_claim(claims.get("iat"), "iat", iss)
        nbf, jti = time_claim(claims.get("nbf"), "nbf", iss, required=False), claims.get("jti")
        assert exp is not None and iat is not None
        if exp + self.leeway_s < now:
            raise Unauthorized("expired", iss)
        if iat - self.leeway_s > now or (nbf is not None and nbf - self.leeway_s > now):
            raise Unauthorized("not yet valid", iss)
        if exp - now > self.max_lifetime_s + self.leeway_s:
            raise Unauthorized("lifetime too long", iss)
        if issuer.tenants and claims.get("tenant") not in issuer.tenants:
            raise Unauthorized("tenant not allow-listed", iss)
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise Unauthorized("no jti", iss)
        try:                                                # a database call: off the event loop
            replayed = await asyncio.to_thread(self.replay.seen, f"{iss}\x1f{jti}", exp)  # type: ignore[union-attr]
        except Exception as exc:   # noqa: BLE001 - the store cannot tell: the check fails closed
            raise Unauthorized("replay store unavailable", iss) from exc
        if replayed:
            raise Unauthorized("replayed jti", iss)
        return claims


def called_url(scope: dict[str, Any], public_base_url: str | None) -> str:
    """The exact URL called, without query: what `aud` must equal."""
    if public_base_url:                             # scope["path"] includes any root_path (ASGI)
        return public_base_url.rstrip("/") + scope["path"]
    return str(URL(scope=scope).replace(query="", fragment=""))


Send = Callable[[dict[str, Any]], Awaitable[None]]


class CdsJwtMiddleware:
    """Guards everything under /cds-services when the app's verifier has trusted issuers. CORS preflights
    (OPTIONS, never authenticated by browsers) pass; the CORS middleware, outside this one, answers them."""

    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Send) -> None:
        path = scope.get("path", "")
        verifier: JwtVerifier | None = getattr(scope["app"].state, "cds_jwt_verifier", None) \
            if scope["type"] == "http" else None
        if (verifier is None or not verifier.enabled or scope.get("method") == "OPTIONS"
                or not (path == PREFIX or path.startswith(PREFIX + "/"))):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("no bearer token")
            claims = await asyncio.wait_for(verifier.verify(token.strip(), called_url(
                scope, getattr(scope["app"].state.settings, "public_base_url", None))), timeout=10)
        except (Unauthorized, asyncio.TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, Unauthorized) else "timeout"
            fields = {"reason": reason}
            if isinstance(exc, Unauthorized) and exc.issuer:
                fields["iss"] = exc.issuer[:200]
            log.warning("CDS Hooks JWT refused", extra={"fields": fields})
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"www-authenticate", b"Bearer"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        # The caller as the audit trail names it: the EHR's issuer (the token itself is never kept).
        scope.setdefault("state", {})["cds_caller"] = str(claims.get("iss", ""))[:200] or None
        await self.app(scope, receive, send)
