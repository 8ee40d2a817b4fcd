"""The patient context: the one input model every API (native, order check, CDS Hooks) maps its request into.

Absent means unknown, [] means none: a missing medication list is not an empty one. Unknown fields are refused
(a typo must not silently drop a clinical input).
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

MAX_DAILY_DOSE_MG = 500.0   # far above any naltrexone regimen; larger numbers are input errors, not doses
MIN_DAILY_DOSE_MG = 0.001   # the smallest dose any source mentions (002: "from 0.001mg"); zero is not a dose

DoseMg = Annotated[float, Field(ge=MIN_DAILY_DOSE_MG, le=MAX_DAILY_DOSE_MG, allow_inf_nan=False,
                                description="Daily dose in mg (0.001 <= dose <= 500).")]
ShortText = Annotated[str, Field(min_length=1, max_length=300)]


def _iso_text(value: object) -> object:
    # Strict models would refuse date strings coming through FastAPI; lax ones accept 0 as 1970-01-01.
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("a date must be a string YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, Field(strict=False), BeforeValidator(_iso_text)]
MedicationStatus = Literal["active", "proposed", "on-hold", "completed", "stopped"]
LdnStatus = Literal["proposed", "active", "on-hold", "stopped"]
LDN_STATUS: dict[str, LdnStatus] = {"active": "active", "proposed": "proposed", "on-hold": "on-hold",
                                    "completed": "stopped", "stopped": "stopped"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # no 0 -> false, no 4 -> "4"


class Code(Strict):
    system: Annotated[str, Field(min_length=1, max_length=200,
                                 description="Code system URI or short name: rxnorm, atc, ndc.")]
    code: Annotated[str, Field(min_length=1, max_length=64)]


class Patient(Strict):
    id: Annotated[str, Field(min_length=1, max_length=128,
                             description="Caller's patient reference. Never logged; only a keyed hash is stored.")]


class LdnOrder(Strict):
    status: LdnStatus
    dose_mg: DoseMg | None = None
    timing: Annotated[str, Field(min_length=1, max_length=60,
                                 description="bedtime, morning, qhs, ... (free text, normalised).")] | None = None
    start_date: IsoDate | None = None
    previous_dose_mg: DoseMg | None = None
    last_dose_change: IsoDate | None = None

    @classmethod
    def of_medication(cls, status: MedicationStatus, **fields: object) -> "LdnOrder":
        """The LDN block of a medication-list entry, a pharmacy order or an EHR draft: the one place that maps a
        medication's status to the LDN block's (a completed LDN course is a stopped one)."""
        return cls(status=LDN_STATUS[status], **fields)


class Medication(Strict):
    # The "name or at least one code" rule, stated in the JSON Schema too so clients (and schemathesis) see it.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, json_schema_extra={"anyOf": [
        {"required": ["name"], "properties": {"name": {"type": "string"}}},
        {"required": ["codes"], "properties": {"codes": {"minItems": 1}}}]})

    name: ShortText | None = None
    status: MedicationStatus = Field("active", description="Absent means active: an unknown status is not "
                                                           "assumed to be safe.")
    codes: Annotated[list[Code], Field(max_length=20)] = []
    dose_mg: DoseMg | None = None

    @model_validator(mode="after")
    def _named_or_coded(self) -> "Medication":
        if self.name is None and not self.codes:
            raise ValueError("a medication needs a name or at least one code")
        return self


class Procedure(Strict):
    name: ShortText | None = None
    date: IsoDate
    elective: bool | None = Field(None, description="Absent: treated as planned (elective), so not ruled out.")
    opioids_expected: bool | None = Field(None, description="Perioperative opioids expected; null: unknown.")


class Renal(Strict):
    egfr: Annotated[float, Field(ge=0, le=250, allow_inf_nan=False, description="mL/min/1.73m2")] | None = None
    ckd_stage: Literal["G1", "G2", "G3", "G3a", "G3b", "G4", "G5", "G5D"] | None = Field(
        None, description="KDIGO GFR category. G3: stage 3 not split into a/b (as on many problem lists); G5D: "
                          "stage 5 on dialysis.")
    dialysis: bool | None = Field(None, description="true: on dialysis. false alone says nothing about kidney "
                                                    "function (the renal rule is then not evaluated).")


class PatientContext(Strict):
    as_of: IsoDate | None = Field(None, description="The date all day arithmetic uses. Default: today (UTC).")
    patient: Patient | None = None
    ldn: LdnOrder | None = None
    medications: Annotated[list[Medication], Field(max_length=500)] | None = Field(
        None, description="Absent: unknown (rules that need it are not evaluated). []: no medications.")
    procedures: Annotated[list[Procedure], Field(max_length=100)] | None = None
    renal: Renal | None = None
