"""Validate FHIR resources as R4 4.0.1 with fhir.resources 6.4 (run by .venv-r4/bin/python; see tests/r4.py).

    echo '[{"resourceType": "MedicationRequest", ...}]' | .venv-r4/bin/python tools/r4_validate.py

Prints a JSON list of problems ([] when every resource is valid R4): "<index> <resourceType>: <error>".
"""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element


def main() -> int:
    if fhir.resources.__fhir_version__ != "4.0.1":
        print(json.dumps([f"fhir.resources {fhir.resources.__version__} is FHIR {fhir.resources.__fhir_version__}"]))
        return 1
    problems = []
    for i, resource in enumerate(json.load(sys.stdin)):
        try:
            construct_fhir_element(resource.get("resourceType"), resource)
        except Exception as exc:   # noqa: BLE001 - every failure is a finding
            problems.append(f"{i} {resource.get('resourceType')}: {exc}")
    print(json.dumps(problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
