"""Total readers of FHIR JSON: every function accepts anything and answers None / [] rather than raising.

Clients send R4, STU3 and DSTU2 shapes, sandbox quirks (an object where R4 has an array) and, in the worst case,
garbage in fields we do not validate. The mapping reads through these helpers only.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Iterator

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """A list, or a single object read as a one-element list (the sandbox sends `category` as an object)."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def objs(value: Any) -> list[dict[str, Any]]:
    if value is None:               # most fields asked for are absent: the common case first
        return []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def utf8(value: str) -> bool:
    """False for a string that is not valid Unicode (a lone surrogate escape such as "\\ud800" parses to one):
    it cannot be written into a response, a log line or a database."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: Any, max_length: int | None = None) -> str | None:
    """A usable string, whitespace folded; None for anything else (not a string, empty, not valid Unicode)."""
    if value.__class__ is not str or not (value.isascii() or utf8(value)):
        return None
    value = " ".join(value.split())
    if not value:
        return None
    return value[:max_length] if max_length else value


# Beyond this a FHIR number is not a measurement: read as absent (the mapping says so on the card).
MAX_NUMBER = 1e12


def number(value: Any) -> float | None:
    """A finite number of plausible size, else None. JSON allows integers of any length (float() of a 310-digit
    one raises OverflowError) and Python's parser takes NaN and Infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) and abs(value) <= MAX_NUMBER else None


def unusable_number(value: Any) -> bool:
    """A number was given, but number() cannot use it."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and number(value) is None


def resource_type(resource: Any) -> str | None:
    value = resource.get("resourceType") if resource.__class__ is dict else None
    if value.__class__ is str and value.isascii() and value.isalpha():     # every FHIR type name: the fast path
        return value
    return text(value)


def resources(bundle: Any) -> list[dict[str, Any]]:
    """The resources in a Bundle's entries (entries without a resource are skipped)."""
    return [r for r in (obj(e).get("resource") for e in items(obj(bundle).get("entry"))) if isinstance(r, dict)]


def next_link(bundle: Any) -> str | None:
    return next((text(obj(link).get("url")) for link in items(obj(bundle).get("link"))
                 if obj(link).get("relation") == "next" and text(obj(link).get("url"))), None)


def is_outcome_with_error(resource: Any) -> bool:
    """An OperationOutcome with an error or fatal issue (warnings and information are not failures)."""
    r = obj(resource)
    return r.get("resourceType") == "OperationOutcome" and any(
        obj(i).get("severity") in ("error", "fatal") for i in items(r.get("issue")))


def codes(concept: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) of each coding of a CodeableConcept (an object read as a list, as everywhere)."""
    return [(text(c.get("system")), text(c.get("code"))) for c in objs(obj(concept).get("coding"))]


def concept_texts(concept: Any) -> list[str]:
    """The concept's text and its codings' displays."""
    c = obj(concept)
    found = [text(c.get("text"))] + [text(coding.get("display")) for coding in objs(c.get("coding"))]
    return [t for t in found if t]


class NotSendable(ValueError):
    """JSON data that cannot be sent back as it is: NaN or infinity, an integer beyond a float, a string that is not
    valid Unicode."""


def sendable_copy(value: Any) -> Any:
    """A deep copy of JSON data (what copy.deepcopy does for it, in one walk with the check); NotSendable when any
    value in it could not be written into a response (a copy in a suggestion)."""
    if isinstance(value, dict):
        return {_sendable(k): sendable_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sendable_copy(v) for v in value]
    return _sendable(value)


def _sendable(value: Any) -> Any:
    if isinstance(value, str):
        if not utf8(value):
            raise NotSendable("a string that is not valid Unicode")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if number(value) is None and not (isinstance(value, int) and abs(value) < 2 ** 63):
            raise NotSendable("a number that is not finite or beyond a float")
    return value


def parse_date(value: Any) -> dt.date | None:
    """The calendar date of a FHIR date, dateTime or instant as written (its local date); None if partial."""
    m = _DATE.match(value) if isinstance(value, str) else None
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def reference_key(reference: Any) -> tuple[str, str] | None:
    """("Medication", "123") from "Medication/123", "https://ehr/fhir/Medication/123" or ".../_history/2"."""
    ref = text(obj(reference).get("reference")) if isinstance(reference, dict) else text(reference)
    if not ref or ref.startswith("#"):
        return None
    parts = ref.split("?")[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and _TYPE.match(parts[-2]) and parts[-1]:
        return parts[-2], parts[-1]
    return None


class ResourceIndex:
    """Resources seen in the request (context Bundles, prefetch) or fetched, by type and id and by fullUrl.

    What is added is indexed on the first lookup, in the order it was added (the first resource with a key wins):
    most calls resolve no reference at all, and indexing every prefetched resource up front was most of the cost."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_url: dict[str, dict[str, Any]] = {}
        self._pending: list[tuple[Any, str | None, bool]] = []    # (resource or Bundle, fullUrl, is a Bundle)

    def add(self, resource: dict[str, Any], full_url: str | None = None) -> None:
        self._pending.append((resource, full_url, False))

    def add_bundle(self, bundle: Any) -> None:
        self._pending.append((bundle, None, True))

    def add_any(self, value: Any) -> None:
        if resource_type(value) == "Bundle":
            self.add_bundle(value)
        elif isinstance(value, dict):
            self.add(value)

    def _index(self) -> None:
        pending, self._pending = self._pending, []
        for value, full_url, is_bundle in pending:
            if not is_bundle:
                self._put(value, full_url)
                continue
            for entry in objs(obj(value).get("entry")):
                resource = entry.get("resource")
                if isinstance(resource, dict):
                    self._put(resource, text(entry.get("fullUrl")))

    def _put(self, resource: dict[str, Any], full_url: str | None) -> None:
        rtype, rid = resource_type(resource), text(resource.get("id"))
        if rtype and rid:
            self._by_key.setdefault((rtype, rid), resource)
        if full_url:
            self._by_url.setdefault(full_url, resource)

    def resolve(self, reference: Any, container: dict[str, Any] | None = None) -> dict[str, Any] | None:
        ref = text(obj(reference).get("reference")) if isinstance(reference, dict) else text(reference)
        if not ref:
            return None
        if ref.startswith("#") and container is not None:
            return next((c for c in objs(container.get("contained")) if text(c.get("id")) == ref[1:]), None)
        if self._pending:
            self._index()
        if ref in self._by_url:
            return self._by_url[ref]
        key = reference_key(ref)
        return self._by_key.get(key) if key else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._index()
        return iter(self._by_key.values())
