"""Prefetch: what the client sent, what is still missing, fetching it from fhirServer, and 412.

For each prefetch key the service needs, three cases are kept apart (CDS Hooks 2.0, "Prefetch"):
* key absent: the client did not (or could not) fulfil it;
* key null: the client had no data: a search with no results, a read of nothing;
* an OperationOutcome (alone, or an error inside the Bundle): the client hit an error.
Plus a Bundle with a `next` link: an incomplete search. In every case but null, the data is fetched from
`fhirServer` with the `fhirAuthorization` bearer token (next pages too) when the request carries both; when it
still cannot be had, a required key answers 412 with an OperationOutcome, an optional one counts as unknown
(the rules that need it are reported as not evaluated, on an info card).

The access token is transient: it is held for this call only, sent only to fhirServer (never to a `next` link
on another host, never through a redirect), and never logged. Log lines name the prefetch key and the
outcome (HTTP status or error type), never a URL: FHIR URLs carry patient ids.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import fhir
from .models import HookRequestBase, OperationOutcome, OperationOutcomeIssue
from .services import ServiceDefinition

log = logging.getLogger("ldn.cds_hooks.prefetch")
# httpx logs every request URL at INFO: FHIR URLs carry patient ids. Ours says what is needed instead.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MAX_PAGES = 10
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_REFERENCE_FETCHES = 20
_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z]+)\s*\}\}")
DESCRIPTIONS = {
    "medicationRequests": "the patient's active medication orders (MedicationRequest)",
    "medicationStatements": "the patient's medication statements (MedicationStatement)",
    "egfr": "the patient's eGFR results (Observation)",
    "conditions": "the patient's kidney conditions (Condition)",
    "appointments": "the patient's upcoming appointments (Appointment)",
    "procedures": "the patient's planned procedures (Procedure)",
    "serviceRequests": "the patient's surgical orders (ServiceRequest)",
    "patient": "the patient (Patient)",
}


class PreconditionFailed(Exception):
    """Required data could not be had: 412 with an OperationOutcome."""

    def __init__(self, hook: str, missing: dict[str, str], no_fetch: dict[str, str]):
        super().__init__(", ".join(missing))
        self.hook, self.missing, self.no_fetch = hook, missing, no_fetch    # key -> why not prefetched / fetched

    def outcome(self) -> OperationOutcome:
        issues = [OperationOutcomeIssue(
            severity="error", code="processing",
            details={"text": f"Cannot evaluate {self.hook} guidance: {DESCRIPTIONS.get(key, key)} could not be "
                             f"obtained: {self.no_fetch[key]}."},
            diagnostics=f"CDS Hooks prefetch key '{key}': {why}; not fetched from fhirServer: "
                        f"{self.no_fetch[key]}.")
            for key, why in self.missing.items()]
        return OperationOutcome(issue=issues)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def usable_server(url: str | None, allowlist: list[str]) -> str | None:
    """The FHIR base URL to use, or None: https (plain http only on loopback), no credentials in the URL, and
    inside the allow-list when one is configured."""
    if not url:
        return None
    base = url.strip().rstrip("/")
    try:
        parts = urlsplit(base)
        host = parts.hostname or ""
    except ValueError:
        return None
    if parts.username or parts.password or parts.query or parts.fragment or not host:
        return None
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
        return None
    if allowlist and not any(base == a.rstrip("/") or base.startswith(a.rstrip("/") + "/") for a in allowlist):
        return None
    return base


def why_no_server(url: str | None, allowlist: list[str], authorized: bool) -> str | None:
    """Why the request's FHIR server cannot be used for fetching (None: it can). Named in the 412."""
    if not url or not authorized:
        missing = [name for name, given in (("fhirServer", url), ("fhirAuthorization", authorized)) if not given]
        return f"the request carries no {' and no '.join(missing)}"
    if usable_server(url, allowlist) is not None:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "fhirServer is not a URL"
    if parts.scheme == "http" and host and not _loopback(host):
        return "fhirServer must be https (plain http is accepted on loopback only)"
    if parts.scheme in ("http", "https") and host and not (parts.username or parts.password or parts.query
                                                          or parts.fragment) and allowlist:
        return "fhirServer is not one of the FHIR servers this service may call (CDS_FHIR_SERVERS)"
    return "fhirServer is not a usable https base URL (no credentials, query or fragment)"


def render(template: str, context: dict[str, Any]) -> str | None:
    """A 2.0 template with its {{context.x}} tokens filled (URL-encoded); None when a token has no value."""
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(m.group(1))
        if not isinstance(value, str) or not value:
            missing = True
            return ""
        return quote(value, safe="")
    out = _TOKEN.sub(fill, template)
    return None if missing or "{{" in out else out


class FhirClient:
    """GETs against one FHIR server with one bearer token. Every failure is None (and a log line without URL)."""

    def __init__(self, base: str, token: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self.base = base
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 2.0))
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.failures: dict[str, str] = {}

    async def __aenter__(self) -> "FhirClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _inside(self, url: str) -> bool:
        return url == self.base or url.startswith(self.base + "/")

    async def get(self, url: str, label: str) -> dict[str, Any] | None:
        if not url.startswith(("http://", "https://")):
            url = f"{self.base}/{url.lstrip('/')}"
        if not self._inside(url):
            self.failures[label] = "link outside fhirServer not followed"
            return None
        if self._client is None:    # created on first use: most calls never fetch
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout,
                                             follow_redirects=False, headers=self._headers)
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            return self._fail(label, type(exc).__name__)
        if response.status_code != 200:
            return self._fail(label, f"HTTP {response.status_code}")
        if len(response.content) > MAX_RESPONSE_BYTES:
            return self._fail(label, "response too large")
        try:
            body = response.json()
        except ValueError:
            return self._fail(label, "not JSON")
        if not fhir.resource_type(body):
            return self._fail(label, "not a FHIR resource")
        return body

    def _fail(self, label: str, reason: str) -> None:
        self.failures[label] = reason
        log.warning("FHIR fetch failed", extra={"fields": {"prefetch_key": label, "reason": reason}})
        return None


@dataclass
class Gathered:
    record: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)        # keys that needed the FHIR server


def interpret(value: Any) -> tuple[str, list[dict[str, Any]]]:
    """("ok" | "error" | "incomplete", resources) of one prefetch value (None: no data)."""
    if value is None:
        return "ok", []
    if fhir.resource_type(value) == "OperationOutcome":
        return "error", []
    if fhir.resource_type(value) == "Bundle":
        found = []
        for r in fhir.resources(value):
            if fhir.resource_type(r) != "OperationOutcome":
                found.append(r)
            elif fhir.is_outcome_with_error(r):
                return "error", []
        return ("incomplete" if fhir.next_link(value) else "ok"), found
    return "ok", [value] if isinstance(value, dict) else []


class Gatherer:
    def __init__(self, request: HookRequestBase, service: ServiceDefinition, index: fhir.ResourceIndex,
                 client: FhirClient | None, no_server: str | None = None):
        self.request, self.service, self.index, self.client = request, service, index, client
        self.no_server = no_server or "no FHIR access"      # why there is no client (for the 412)
        self.prefetch: dict[str, Any] = request.prefetch_data()
        self._as_sent: set[str] = set()            # keys whose prefetch value was usable as sent (not fetched)
        for value in self.prefetch.values():
            self.index.add_any(value)

    async def _pages(self, first: dict[str, Any], key: str) -> list[dict[str, Any]] | None:
        found = fhir.resources(first)
        link, pages = fhir.next_link(first), 1
        while link:
            if self.client is None or pages >= MAX_PAGES:
                return None
            page = await self.client.get(link, key)
            status, more = interpret(page) if page is not None else ("error", [])
            if status == "error":
                return None
            self.index.add_any(page)
            found += more
            link, pages = fhir.next_link(page), pages + 1
        return [r for r in found if fhir.resource_type(r) != "OperationOutcome"]

    async def _key(self, key: str) -> tuple[list[dict[str, Any]] | None, str | None]:
        """(resources or None, why it could not be had)."""
        why = "absent"
        if key in self.prefetch:
            value = self.prefetch[key]
            status, found = interpret(value)
            if status == "ok":
                self._as_sent.add(key)
                return found, None
            if status == "incomplete" and self.client is not None:
                pages = await self._pages(value, key)
                if pages is not None:
                    return pages, None
            why = "an OperationOutcome (the client hit an error)" if status == "error" else "an incomplete search"
        if self.client is None:
            return None, why
        url = render(self.service.templates[key], self.request.context.model_dump())
        body = await self.client.get(url, key) if url else None
        if body is None:
            return None, why
        status, found = interpret(body)
        if status == "error":
            return None, why
        self.index.add_any(body)
        if status == "incomplete":
            pages = await self._pages(body, key)
            return (pages, None) if pages is not None else (None, why)
        return found, None

    async def gather(self, required: frozenset[str], optional: frozenset[str]) -> Gathered:
        wanted = [k for k in self.service.prefetch_keys if k in required | optional]
        if self.client is None:     # nothing to fetch: one task per key would only add the event loop's overhead
            results = [await self._key(k) for k in wanted]
        else:
            results = await asyncio.gather(*(self._key(k) for k in wanted))
        out = Gathered()
        missing: dict[str, str] = {}
        for key, (found, why) in zip(wanted, results):
            out.record[key] = found
            if found is not None and key not in self._as_sent:
                out.fetched.append(key)
            if found is None and key in required:
                missing[key] = f"was {why}" if why == "absent" else f"held {why}"
        if missing:
            no_fetch = {k: (f"the fetch failed ({self.client.failures.get(k, 'no usable answer')})"
                            if self.client is not None else self.no_server) for k in missing}
            raise PreconditionFailed(self.service.hook, missing, no_fetch)
        return out

    async def resolve(self, references: list[str]) -> None:
        """Fetch referenced resources (Medication, ServiceRequest) that the request did not carry."""
        if self.client is None:
            return
        bodies = await asyncio.gather(*(self.client.get(ref, "reference") for ref in references[:MAX_REFERENCE_FETCHES]
                                        if fhir.reference_key(ref)))
        for body in bodies:
            if body is not None and not fhir.is_outcome_with_error(body):
                self.index.add_any(body)
