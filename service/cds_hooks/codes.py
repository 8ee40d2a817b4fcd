"""The code systems the FHIR mapping reads and the protocol codes the cards write. The clinical codes themselves
(eGFR, CKD and dialysis, surgery, EventTiming) are knowledge: rules/vocabularies/clinical-codes.yaml, loaded as
KnowledgeBase.clinical_codes and part of the knowledge version."""
from __future__ import annotations

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10_SYSTEMS = (ICD10CM, "http://hl7.org/fhir/sid/icd-10")

# MedicationRequest.statusReason for a surgery hold (http://hl7.org/fhir/R4/valueset-medicationrequest-status-reason).
STATUS_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
STATUS_REASON_SURGERY = ("surg", "Patient scheduled for surgery")
