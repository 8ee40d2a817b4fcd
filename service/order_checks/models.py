"""Request and response models of POST /v1/order-checks. Issues extend the core's AdvisoryOut (same citations,
same evidence), and not-evaluated rules are its NotEvaluatedOut: one vocabulary across the APIs."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from ..core.context import (MAX_DAILY_DOSE_MG, MIN_DAILY_DOSE_MG, Code, IsoDate, Medication, Procedure, Renal,
                            ShortText, Strict)
from ..core.representation import AdvisoryOut, NotEvaluatedOut, Out
from ..core.units import DOSE_TEXT_PATTERN, EXAMPLES, dose_mg

Verdict = Literal["stop", "review", "pass"]
OrderKind = Literal["new", "refill", "change"]

DoseInput = Annotated[
    float, BeforeValidator(dose_mg),
    Field(ge=MIN_DAILY_DOSE_MG, le=MAX_DAILY_DOSE_MG, allow_inf_nan=False),
    WithJsonSchema({
        "description": f"Dose per administration: a number in mg, or a text with its unit such as {EXAMPLES} "
                       f"(mg, mcg/µg/ug or g; any case; space optional). {MIN_DAILY_DOSE_MG:g}-"
                       f"{MAX_DAILY_DOSE_MG:g} mg once converted.",
        "anyOf": [{"type": "number", "minimum": MIN_DAILY_DOSE_MG, "maximum": MAX_DAILY_DOSE_MG},
                  {"type": "string", "pattern": DOSE_TEXT_PATTERN}]}),
]
Reference = Annotated[str, Field(min_length=1, max_length=128,
                                 description="The caller's opaque reference. Not used in the decision; never logged.")]


class Order(Strict):
    """The medication being ordered, as the pharmacy system has it."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, json_schema_extra={"anyOf": [
        {"required": ["name"], "properties": {"name": {"type": "string"}}},
        {"required": ["codes"], "properties": {"codes": {"minItems": 1}}}]})

    name: ShortText | None = Field(None, description="Product name or free-text description, e.g. \"Naltrexone HCl "
                                                     "4.5 mg capsule, compounded\" or \"Percocet 5/325\".")
    codes: Annotated[list[Code], Field(max_length=20, description="RxNorm, NDC or ATC codes. Each code the "
                                       "terminology does not know is reported back as unrecognised.")] = []
    dose_mg: DoseInput | None = None
    frequency: Annotated[str, Field(min_length=1, max_length=120, description=(
        "How often: daily, qhs, BID, every 12 hours, \"1 cap po at bedtime\"... Absent: dose_mg is taken as the "
        "daily dose. Not understood: the daily dose is unknown and the dose rules are reported as not "
        "evaluated."))] | None = None
    timing: Annotated[str, Field(min_length=1, max_length=60,
                                 description="Time of administration: bedtime, morning, qhs...")] | None = None
    kind: OrderKind = Field(description="new: a first order (a new start for LDN); refill: the same order again; "
                                        "change: a dose or regimen change.")
    previous_dose_mg: DoseInput | None = Field(None, description="Dose per administration before a change.")
    last_dose_change: IsoDate | None = None

    @model_validator(mode="after")
    def _named_or_coded(self) -> "Order":
        if self.name is None and not self.codes:
            raise ValueError("an order needs a name or at least one code")
        return self


class Profile(Strict):
    """The patient's profile, as in POST /v1/evaluations: absent means unknown, [] means none."""
    medications: Annotated[list[Medication], Field(max_length=500)] | None = Field(
        None, description="Absent: unknown (the rules that need it are not evaluated, and the verdict is never "
                          "pass). []: no medications.")
    procedures: Annotated[list[Procedure], Field(max_length=100)] | None = None
    renal: Renal | None = None


class OrderCheckRequest(Strict):
    as_of: IsoDate | None = Field(None, description="The date all day arithmetic uses. Default: today (UTC).")
    order: Order
    profile: Profile | None = Field(None, description="Absent: nothing is known about the patient.")
    pharmacy: Reference | None = None
    prescriber: Reference | None = None




class CodingOut(Out):
    system: str
    code: str
    display: str


class DurOut(Out):
    """The NCPDP DUR codes of the issue, as a pharmacy system reads them."""
    reason_for_service: str = Field(description="NCPDP DUR Reason for Service code: DD, HD, LD, ID, TD, DL, MC...")
    reason_for_service_display: str
    clinical_significance: Literal[1, 2, 3] = Field(description="NCPDP clinical significance: 1 major, 2 moderate, "
                                                                "3 minor (follows the severity).")
    clinical_significance_display: str
    professional_service: str | None = Field(None, description="Suggested NCPDP Professional Service code for the "
                                                               "action, where one applies (M0, PE).")
    professional_service_display: str | None = None


class OrderIssueOut(AdvisoryOut):
    dur: DurOut
    detected_issue_code: CodingOut = Field(description="HL7 v3 ActCode detected-issue code (FHIR DetectedIssue.code).")
    suggested_mitigation: CodingOut | None = Field(None, description="HL7 v3 ActCode detected-issue management code "
                                                                     "for the recommended action, not yet taken.")


class OrderOut(Out):
    """The ordered medication as the service understood it."""
    category: Literal["ldn", "naltrexone", "opioid", "other", "unrecognized"] = Field(
        description="ldn: checked as LDN; naltrexone: another naltrexone product; opioid; other: recognised, "
                    "neither; unrecognized: not recognised (never a pass).")
    kind: Literal["new", "refill", "change"]
    ingredients: list[str]
    recognised_by: Literal["rxnorm", "atc", "ndc", "name"] | None
    matched: str | None = Field(description="The code or the curated term that matched.")
    naltrexone_form: Literal["ldn", "oral-standard", "extended-release-injection", "combination",
                             "unspecified"] | None
    dose_mg: float | None = Field(description="Dose per administration, converted to mg.")
    administrations_per_day: int | None = Field(description="From the frequency; null when not understood.")
    daily_dose_mg: float | None = Field(description="LDN orders: the daily dose the dose rules checked; null when it "
                                                    "could not be computed.")


class NotApplicableOut(Out):
    rule_id: str
    rule_version: str
    reason: str


class UnrecognizedItemOut(Out):
    field: str = Field(description="Where it was sent: order, or profile.medications[i].")
    name: str | None = None
    codes: list[Code] = []


class UnrecognizedCodeOut(Out):
    field: str = Field(description="Where it was sent, e.g. order.codes[0].")
    system: str
    code: str


class OrderCheckResponse(Out):
    order_check_id: str
    as_of: dt.date
    knowledge_version: str
    verdict: Verdict = Field(description="stop: a critical issue. review: a warning, or a rule that could have raised "
                                         "a warning or a critical issue for this order was not evaluated, or the "
                                         "order was not recognised. pass: every such rule ran and none fired above "
                                         "info.")
    verdict_reasons: list[str] = Field(min_length=1, description="Why this verdict, one line each.")
    order: OrderOut
    issues: list[OrderIssueOut] = Field(description="Issues concerning this order, most severe first.")
    profile_issues: list[OrderIssueOut] = Field(description="Issues found in the profile that this order neither "
                                                            "causes nor changes. They do not affect the verdict.")
    not_evaluated: list[NotEvaluatedOut] = Field(description="Rules that concern this order but could not run "
                                                             "(missing inputs).")
    not_applicable: list[NotApplicableOut] = Field(description="Rules that do not concern this order, or that the "
                                                               "facts given already rule out.")
    unrecognized: list[UnrecognizedItemOut] = Field(description="Medications (the order or profile entries) that "
                                                                "were not recognised.")
    unrecognized_codes: list[UnrecognizedCodeOut] = Field(description="Codes the terminology does not know (an NDC "
                                                                      "without NDC data, another code system).")
    notes: list[str] = Field(description="How the order was read: units, frequency, assumptions.")
