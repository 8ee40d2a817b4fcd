"""Response models of POST /v1/order-checks. Issues extend the native API's AdvisoryOut (same citations, same
evidence), and not-evaluated rules are the native NotEvaluatedOut: one vocabulary across the APIs."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from ..core.context import Code
from ..native.models import AdvisoryOut, NotEvaluatedOut, Out

Verdict = Literal["stop", "review", "pass"]


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
