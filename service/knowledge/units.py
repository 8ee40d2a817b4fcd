"""Mass units as prescriptions, FHIR quantities and product names write them, in mg: the one table every reader of
a dose or a strength uses."""
from __future__ import annotations

MG_PER_UNIT: dict[str, float] = {
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0,
    "mcg": 0.001, "ug": 0.001, "µg": 0.001, "μg": 0.001, "microgram": 0.001, "micrograms": 0.001,
    "g": 1000.0, "gm": 1000.0, "gram": 1000.0, "grams": 1000.0,
}
