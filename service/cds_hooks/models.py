"""CDS Hooks wire types (2.0, with the 3.0 ballot's additions where they are backwards compatible).

Requests are lenient: unknown fields and `extension` objects are accepted and ignored, Bundles need no `type`,
`fhirAuthorization` may be null, FHIR resources are read defensively by the mapping. What is checked is what the
service relies on: the hook name, a patientId that is a FHIR id (it goes into FHIR URLs), Bundles where the
hook puts Bundles, prefetch values that are FHIR resources or null, and appointment dates that are dateTimes
(an unreadable surgery date must not silently drop a procedure).

Responses are strict: models are serialised with `exclude_none`, every optional list is absent or non-empty,
every string non-empty. tests/cds_hooks_validator.py checks the checklist's invariants on every response.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ModelWrapValidatorHandler,
                      PrivateAttr, SecretStr, model_validator)

# FHIR id characters (R4 caps the length at 64; EHR ids run longer, so the cap here is lenient). The id is put
# into FHIR search URLs, so "/", "?" and "&" must never get through.
FHIR_ID_PATTERN = r"^[A-Za-z0-9\-.]{1,128}$"
# FHIR R4 dateTime (http://hl7.org/fhir/R4/datatypes.html#dateTime), anchored.
FHIR_DATETIME_PATTERN = (
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]"
    r"|14:00)?)?)?$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

Text = Annotated[str, Field(min_length=1)]
INCLUDE_INFO_EXTENSION = "ldn-cds.include-info-cards"


class Lenient(BaseModel):
    # strict: no "1" -> 1 or 0 -> false coercions; extra="allow": unknown fields are accepted (and ignored).
    model_config = ConfigDict(extra="allow", strict=True)


class Resource(Lenient):
    """Any FHIR resource. Only resourceType is checked here; the mapping reads the rest defensively."""
    resourceType: Annotated[str, Field(min_length=1, max_length=64)]


class BundleEntry(Lenient):
    fullUrl: str | None = None
    resource: Resource | None = None


class Bundle(Lenient):
    resourceType: Literal["Bundle"]
    type: str | None = Field(None, description="SHOULD be collection; absent is accepted (the sandbox omits it).")
    entry: Annotated[list[BundleEntry], Field(max_length=1000)] = []


FhirDateTime = Annotated[str, Field(pattern=FHIR_DATETIME_PATTERN, description="A FHIR dateTime.")]


class BookedResource(Resource):
    """An Appointment being booked: its dates, when given, must be dateTimes (the hold is computed from them)."""
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None


class BookedEntry(BundleEntry):
    resource: BookedResource | None = None


class AppointmentBundle(Bundle):
    entry: Annotated[list[BookedEntry], Field(max_length=1000)] = []


class HookContext(Lenient):
    userId: str | None = Field(None, description="[ResourceType]/[id] of the user; not used by this service.")
    patientId: Annotated[str, Field(pattern=FHIR_ID_PATTERN, description="FHIR Patient.id (not a reference).")]
    encounterId: str | None = None


class OrderContext(HookContext):
    draftOrders: Bundle = Field(description="Bundle of the request resources being ordered (draft, or any status "
                                            "on re-sign).")
    selections: Annotated[list[str], Field(max_length=1000)] | None = Field(
        None, description="order-select: the newly selected orders, as Type/id references into draftOrders.")


class AppointmentBookContext(HookContext):
    appointments: AppointmentBundle = Field(description="Bundle of the Appointments being booked.")


class FhirAuthorization(Lenient):
    """OAuth 2.0 access to the client's FHIR server. The token is transient: used for this call, never stored
    or logged (SecretStr keeps it out of reprs)."""
    access_token: SecretStr = Field(min_length=1)
    token_type: str | None = None
    expires_in: int | float | None = None   # seconds; JSON Schema's integer includes 3600.0 (not used by us)
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class HookRequestBase(Lenient):
    hookInstance: Annotated[str, Field(min_length=1, max_length=256, description="UUID of this hook call.")]
    fhirServer: str | None = Field(None, description="Base URL of the client's FHIR server (https).")
    fhirAuthorization: FhirAuthorization | None = Field(
        None, description="Bearer token for fhirServer. null is accepted (some clients send it).")
    prefetch: dict[str, Resource | None] | None = Field(
        None, description="Prefetch key -> FHIR resource (a Bundle for searches), or null when the client had "
                          "no data. An absent key means not fulfilled; an OperationOutcome means the client "
                          "hit an error.")
    extension: dict[str, Any] | None = Field(
        None, description=f"Accepted and ignored, except `{INCLUDE_INFO_EXTENSION}`: true, which asks for "
                          "info-level cards too.")

    # The prefetch as parsed from the request body, once validated: read as it is (prefetch_data) rather than
    # dumped back from the models, which gives the same data at a cost (bench/README.md).
    _prefetch_input: dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_prefetch_input(cls, data: Any, handler: ModelWrapValidatorHandler["HookRequestBase"]) -> Any:
        request = handler(data)
        if isinstance(request, HookRequestBase) and isinstance(data, dict) and isinstance(data.get("prefetch"), dict):
            request._prefetch_input = data["prefetch"]
        return request

    def wants_info_cards(self) -> bool:
        return bool(self.extension) and self.extension.get(INCLUDE_INFO_EXTENSION) is True

    def prefetch_data(self) -> dict[str, dict[str, Any] | None]:
        """Prefetch key -> the resource as plain JSON data (None: no data), equal to the model's `model_dump()`
        (resourceType first). Shared with the request body, so read-only: the mapping copies what it changes."""
        given = self._prefetch_input or {}
        out: dict[str, dict[str, Any] | None] = {}
        for key, resource in (self.prefetch or {}).items():
            raw = given.get(key)
            if resource is None:
                out[key] = None
            elif isinstance(raw, dict) and raw.get("resourceType") == resource.resourceType:
                out[key] = raw if next(iter(raw)) == "resourceType" else {"resourceType": resource.resourceType, **raw}
            else:                                   # built in Python, not parsed from a body
                out[key] = resource.model_dump()
        return out


class OrderSelectRequest(HookRequestBase):
    hook: Literal["order-select"]
    context: OrderContext


class OrderSignRequest(HookRequestBase):
    hook: Literal["order-sign"]
    context: OrderContext


class AppointmentBookRequest(HookRequestBase):
    hook: Literal["appointment-book"]
    context: AppointmentBookContext


class PatientViewRequest(HookRequestBase):
    hook: Literal["patient-view"]
    context: HookContext


HookRequest = OrderSelectRequest | OrderSignRequest | AppointmentBookRequest | PatientViewRequest


# --- responses (strict) -------------------------------------------------------------------------------------------

class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(Out):
    system: Text
    code: Text
    display: Text | None = None


class OverrideReason(Out):
    """A Coding whose display is required (the client shows it)."""
    system: Text
    code: Text
    display: Text


class Source(Out):
    label: Text
    url: Text | None = Field(None, description="Absolute URL: this service's page for the rule behind the card.")
    topic: Coding | None = None


class Link(Out):
    label: Text
    url: Text = Field(description="Absolute URL.")
    type: Literal["absolute", "smart"]


class Action(Out):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = Field(None, description="create/update: the whole (updated) FHIR resource.")
    resourceId: Text | None = Field(None, description="delete: a relative reference, e.g. MedicationRequest/123.")


class Suggestion(Out):
    label: Text
    uuid: Text
    isRecommended: bool | None = None
    actions: Annotated[list[Action], Field(min_length=1)]


class Card(Out):
    uuid: Text
    summary: Annotated[str, Field(min_length=1, max_length=139)]
    detail: Text | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: Annotated[list[Suggestion], Field(min_length=1)] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: Annotated[list[OverrideReason], Field(min_length=1)] | None = None
    links: Annotated[list[Link], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> "Card":
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        return self


class CdsResponse(Out):
    cards: list[Card] = Field(description="[] means: no guidance.")


class CdsService(Out):
    hook: Text
    title: Text
    description: Text
    id: Text
    prefetch: dict[str, str] | None = None
    usageRequirements: Text | None = None


class Discovery(Out):
    services: list[CdsService]


class IssueDetails(Out):
    text: Text


class OperationOutcomeIssue(Out):
    severity: Literal["fatal", "error", "warning", "information"]
    code: Text
    details: IssueDetails | None = None
    diagnostics: Text | None = None
    expression: Annotated[list[Text], Field(min_length=1)] | None = None


class OperationOutcome(Out):
    resourceType: Literal["OperationOutcome"] = "OperationOutcome"
    id: Text | None = None
    issue: Annotated[list[OperationOutcomeIssue], Field(min_length=1)]


# --- feedback -----------------------------------------------------------------------------------------------------

def _rfc3339(value: object) -> object:
    # Lax datetime parsing would take 0 or "1639217131" as a timestamp: only RFC 3339 strings get through.
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2021-12-11T10:05:31Z")
    return value


Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339)]


class FeedbackCoding(Lenient):
    system: Annotated[str, Field(min_length=1, max_length=500)]
    code: Annotated[str, Field(min_length=1, max_length=200)]
    display: Annotated[str, Field(max_length=500)] | None = Field(
        None, description="Optional here: the sandbox sends override reasons without display.")


class OverrideReasonIn(Lenient):
    # cds-fb-3: a reason, a comment, or both.
    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"anyOf": [
        {"required": ["reason"], "properties": {"reason": {"type": "object"}}},
        {"required": ["userComment"], "properties": {"userComment": {"type": "string"}}}]})

    reason: FeedbackCoding | None = None
    userComment: Annotated[str, Field(max_length=4000)] | None = None

    @model_validator(mode="after")
    def _reason_or_comment(self) -> "OverrideReasonIn":
        if self.reason is None and self.userComment is None:
            raise ValueError("overrideReason needs a reason, a userComment, or both")
        return self


class AcceptedSuggestion(Lenient):
    id: Annotated[str, Field(min_length=1, max_length=256)]


class FeedbackItem(Lenient):
    # cds-fb-2: acceptedSuggestions is required for an accepted outcome.
    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"anyOf": [
        {"properties": {"outcome": {"const": "overridden"}}},
        {"required": ["acceptedSuggestions"],
         "properties": {"acceptedSuggestions": {"type": "array", "items": {"type": "object"}, "minItems": 1}}}]})

    card: Annotated[str, Field(min_length=1, max_length=256, description="The card's uuid.")]
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: Annotated[list[AcceptedSuggestion], Field(min_length=1, max_length=100)] | None = None
    overrideReason: OverrideReasonIn | None = None
    outcomeTimestamp: Timestamp

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> "FeedbackItem":
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions")
        return self

    def timestamp_key(self) -> str:
        """The outcome time as a UTC string: the same instant written with another offset is the same key."""
        try:
            return self.outcomeTimestamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        except (OverflowError, ValueError):      # year 1 or 9999 at an offset: keep the instant as written
            return self.outcomeTimestamp.isoformat()


class FeedbackRequest(Lenient):
    feedback: Annotated[list[FeedbackItem], Field(max_length=500)]


class FeedbackReceipt(Out):
    received: int
    stored: int = Field(description="New feedback records.")
    duplicates: int = Field(description="Feedback already stored (same service, card and outcome time): ignored.")


class ReasonCount(Out):
    system: str
    code: str
    display: str | None = None
    count: int


class RuleFeedback(Out):
    rule_id: str
    cards_issued: int
    accepted: int
    overridden: int


class ServiceFeedbackSummary(Out):
    service_id: str
    feedback: int
    accepted: int
    overridden: int
    overridden_without_reason: int
    override_reasons: list[ReasonCount]
    by_rule: list[RuleFeedback] = Field(description="Cards issued by this process's store, joined to feedback.")


class FeedbackSummary(Out):
    services: list[ServiceFeedbackSummary]
