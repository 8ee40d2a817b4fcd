"""The clinical codes the FHIR mapping recognises. Only codes we are sure of: a wrong code here would make the
service read a record wrongly, so a code in doubt is left out (the record then counts as not provided, which
the cards say, rather than as normal)."""
from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10_SYSTEMS = (ICD10CM, "http://hl7.org/fhir/sid/icd-10")

# eGFR per 1.73 m2 (LOINC): MDRD (33914-3; 48642-3 and 48643-1, the non-black / black variants), CKD-EPI
# (62238-1), any method in serum, plasma or blood (69405-9), CKD-EPI 2021 race-free (98979-8).
EGFR_LOINC = ("33914-3", "48642-3", "48643-1", "62238-1", "69405-9", "98979-8")

# ICD-10-CM chronic kidney disease stages and dialysis dependence (dots as published; matching ignores them).
# An unspecified stage 3 is read as G3a: the milder stage 3, and still renal impairment for the rule.
ICD10_RENAL: dict[str, tuple[str | None, bool]] = {   # code -> (CKD stage, dialysis)
    "N18.1": ("G1", False), "N18.2": ("G2", False), "N18.3": ("G3a", False), "N18.30": ("G3a", False),
    "N18.31": ("G3a", False), "N18.32": ("G3b", False), "N18.4": ("G4", False), "N18.5": ("G5", False),
    "N18.6": ("G5", False),                            # end-stage renal disease
    "Z99.2": (None, True),                             # dependence on renal dialysis
}
# SNOMED CT: CKD stage 1, 2, 3 (unspecified -> G3a), 3A, 3B, 4, 5, end-stage renal disease, CKD stage 5 on
# dialysis, dependence on renal dialysis.
SNOMED_RENAL: dict[str, tuple[str | None, bool]] = {
    "431855005": ("G1", False), "431856006": ("G2", False), "433144002": ("G3a", False),
    "700378005": ("G3a", False), "700379002": ("G3b", False), "431857002": ("G4", False),
    "433146000": ("G5", False), "46177005": ("G5", False), "714152005": ("G5", True), "105502003": (None, True),
}
CKD_STAGE_ORDER = ("G1", "G2", "G3a", "G3b", "G4", "G5")

# SNOMED CT 387713003 |Surgical procedure|: the FHIR R4 example category for surgical ServiceRequests and
# Procedures.
SURGICAL_PROCEDURE = "387713003"
# HL7 v2 table 0276 appointment reason codes: EMERGENCY is not elective; FOLLOWUP and CHECKUP are not surgery.
V2_APPOINTMENT_EMERGENCY = "EMERGENCY"
V2_APPOINTMENT_NOT_SURGERY = ("FOLLOWUP", "CHECKUP", "WALKIN")
# ServiceRequest.priority values that mean "not elective".
URGENT_PRIORITIES = ("urgent", "asap", "stat")

# Words in the text or code displays of an Appointment, ServiceRequest or Procedure that mean surgery. Heuristic,
# so deliberately narrow (no "-otomy": phlebotomy; no bare "replacement": hormone replacement therapy).
SURGERY_PATTERNS = (
    r"\b(surgery|surgical|operation)\b",
    r"\b\w+(ectomy|ostomy|plasty|pexy|rrhaphy)\b",
    r"\b(laparotomy|craniotomy|thoracotomy|sternotomy|arthrotomy)\b",
    r"\b(arthroscop|laparoscop|thoracoscop)\w*",
    r"\b(knee|hip|shoulder|joint|valve|ankle|elbow) replacement\b",
    r"\b(transplant|transplantation|amputation|resection|excision|internal fixation|spinal fusion)\b",
)
# ... unless the text says it is a visit about surgery rather than the surgery itself.
NOT_SURGERY_PATTERNS = (
    r"\b(follow[- ]?up|post[- ]?op\w*|pre[- ]?op\w*|consult\w*|assessment|review|check[- ]?up)\b",
)

# MedicationRequest.statusReason for a surgery hold (http://hl7.org/fhir/R4/valueset-medicationrequest-status-reason).
STATUS_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
STATUS_REASON_SURGERY = ("surg", "Patient scheduled for surgery")
# Timing.repeat.when (EventTiming) codes read as administration times.
EVENT_TIMING = {"HS": "bedtime", "MORN": "morning", "MORN.early": "morning", "MORN.late": "morning",
                "NOON": "noon", "AFT": "afternoon", "AFT.early": "afternoon", "AFT.late": "afternoon",
                "EVE": "evening", "EVE.early": "evening", "EVE.late": "evening", "NIGHT": "at night",
                "WAKE": "on waking"}
