"""The four CDS Services and their prefetch templates (data: discovery lists exactly this). The eGFR, kidney
condition and surgery searches are built from the knowledge base's clinical codes: services_for(codes).

Templates use CDS Hooks 2.0 tokens only ({{context.patientId}}): the 3.0 ballot's FHIRPath tokens are a client
SHOULD, so a client may not support them. Without a date token, "upcoming" cannot be said in a 2.0 query: the
appointment and procedure searches ask for the open statuses and the mapping keeps the future dates.
Queries use only what the spec allows: type-level searches, reference and token parameters, _sort, _count.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..knowledge.vocabularies import ClinicalCodes
from . import codes
from .models import CdsService

PATIENT = "patient"
MEDICATION_REQUESTS = "medicationRequests"
MEDICATION_STATEMENTS = "medicationStatements"
EGFR = "egfr"
CONDITIONS = "conditions"
APPOINTMENTS = "appointments"
PROCEDURES = "procedures"
SERVICE_REQUESTS = "serviceRequests"


def _codes(system: str, values: Iterable[str]) -> str:
    return ",".join(f"{system}|{v}" for v in values)


def templates(clinical: ClinicalCodes) -> dict[str, str]:
    """Every prefetch template, the eGFR, kidney-condition and surgery searches built from the loaded codes."""
    return {
        PATIENT: "Patient/{{context.patientId}}",
        MEDICATION_REQUESTS: "MedicationRequest?patient={{context.patientId}}&status=active",
        MEDICATION_STATEMENTS: "MedicationStatement?patient={{context.patientId}}&status=active",
        EGFR: ("Observation?patient={{context.patientId}}&code=" + _codes(codes.LOINC, clinical.egfr_loinc)
               + "&_sort=-date&_count=10"),
        CONDITIONS: ("Condition?patient={{context.patientId}}&clinical-status=active&code="
                     + _codes(codes.ICD10CM, clinical.icd10_renal) + ","
                     + _codes(codes.SNOMED, clinical.snomed_renal)),
        APPOINTMENTS: "Appointment?patient={{context.patientId}}&status=proposed,pending,booked",
        PROCEDURES: "Procedure?patient={{context.patientId}}&status=preparation",
        SERVICE_REQUESTS: ("ServiceRequest?patient={{context.patientId}}&status=active&category="
                           f"{codes.SNOMED}|{clinical.surgical_procedure}"),
    }


_ALL = (PATIENT, MEDICATION_REQUESTS, MEDICATION_STATEMENTS, EGFR, CONDITIONS, APPOINTMENTS, PROCEDURES,
        SERVICE_REQUESTS)
# 2.0 tokens: {{context.<root-level field>}} and the user tokens. Anything else is a 3.0 (FHIRPath) token.
TOKEN_2_0 = re.compile(r"\{\{(context\.[A-Za-z]+|userPractitionerId|userPractitionerRoleId|userPatientId|"
                       r"userRelatedPersonId)\}\}")


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch_keys: tuple[str, ...]
    templates: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)  # key -> query (services_for)

    @property
    def prefetch(self) -> dict[str, str]:
        return {k: self.templates[k] for k in self.prefetch_keys}

    def discovery(self) -> CdsService:
        return CdsService(hook=self.hook, title=self.title, description=self.description, id=self.id,
                          prefetch=self.prefetch, usageRequirements=USAGE)


USAGE = ("Needs the patient's active MedicationRequests (prefetch or FHIR access via fhirAuthorization); without "
         "them the service answers 412. eGFR, CKD/dialysis Conditions, MedicationStatements and upcoming "
         "Appointments/Procedures/ServiceRequests are used when available; what is missing is reported in an "
         "info card. Info-level advice is returned only when the request's extension asks for it "
         "(\"ldn-cds.include-info-cards\": true).")

_ORDER = ("A draft low-dose naltrexone (LDN) order checked against the patient (opioids, other naltrexone "
          "products, upcoming elective surgery, kidney function, dose and titration), and a draft opioid or "
          "naltrexone order checked against a patient on LDN. Each card quotes its source passages.")

_DEFINITIONS = (
    ServiceDefinition("ldn-order-select", "order-select", "LDN order check (order selected)", _ORDER, _ALL),
    ServiceDefinition("ldn-order-sign", "order-sign", "LDN order check (order signed)", _ORDER, _ALL),
    ServiceDefinition(
        "ldn-appointment-book", "appointment-book", "LDN perioperative hold at surgical booking",
        "A surgical appointment being booked for a patient on low-dose naltrexone (LDN): hold LDN 2-3 days "
        "before the elective procedure; the card gives the hold-from dates.",
        (PATIENT, MEDICATION_REQUESTS, MEDICATION_STATEMENTS, SERVICE_REQUESTS)),
    ServiceDefinition(
        "ldn-patient-view", "patient-view", "LDN standing problems",
        "Standing problems of a patient on low-dose naltrexone (LDN): an active opioid, impaired kidney "
        "function, another naltrexone product, a dose outside the LDN range, an upcoming elective procedure.",
        _ALL),
)
SERVICE_IDS = frozenset(s.id for s in _DEFINITIONS)


@functools.lru_cache(maxsize=8)     # one entry per loaded knowledge base (ClinicalCodes hashes by identity)
def services_for(clinical: ClinicalCodes) -> dict[str, ServiceDefinition]:
    """The four services by id, their prefetch templates built from this knowledge base's clinical codes."""
    queries = templates(clinical)
    return {s.id: dataclasses.replace(s, templates=queries) for s in _DEFINITIONS}
