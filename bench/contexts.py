"""Reference patient contexts for benchmarks: small, typical, large (as the performance issue defines them)."""
from __future__ import annotations

from typing import Any

_OTHER = ["metformin 500 mg tablet", "lisinopril 10 mg tablet", "atorvastatin 20 mg tablet", "sertraline 50 mg",
          "levothyroxine 75 mcg", "omeprazole 20 mg capsule", "amlodipine 5 mg", "gabapentin 300 mg capsule",
          "vitamin D3 1000 IU", "cetirizine 10 mg", "ibuprofen 400 mg", "acetaminophen 500 mg"]
_OPIOIDS = ["Oxycodone HCl 5 mg tablet", "Percocet 5/325", "Tylenol #3", "tramadol 50 mg tablet"]


def _meds(n: int, opioids: int) -> list[dict[str, Any]]:
    meds = [{"name": _OPIOIDS[i % len(_OPIOIDS)], "status": "active"} for i in range(opioids)]
    meds += [{"name": _OTHER[i % len(_OTHER)] + (f" #{i}" if i >= len(_OTHER) else ""), "status": "active"}
             for i in range(n - opioids)]
    return meds


SMALL: dict[str, Any] = {
    "as_of": "2026-03-01",
    "ldn": {"status": "active", "dose_mg": 4.5, "timing": "bedtime"},
    "medications": _meds(3, 1),
}
TYPICAL: dict[str, Any] = {
    "as_of": "2026-03-01",
    "patient": {"id": "bench-patient"},
    "ldn": {"status": "active", "dose_mg": 4.5, "timing": "bedtime", "start_date": "2025-10-01",
            "previous_dose_mg": 3, "last_dose_change": "2026-01-15"},
    "medications": _meds(12, 1),
    "procedures": [{"name": "Total knee replacement", "date": "2026-03-10", "elective": True, "opioids_expected": True}],
    "renal": {"egfr": 52, "ckd_stage": "G3a", "dialysis": False},
}
LARGE: dict[str, Any] = {
    "as_of": "2026-03-01",
    "patient": {"id": "bench-patient"},
    "ldn": {"status": "proposed", "dose_mg": 4.5, "timing": "morning"},
    "medications": _meds(60, 3),
    "procedures": [{"name": f"Procedure {i}", "date": f"2026-03-{10 + i:02d}", "elective": True,
                    "opioids_expected": None} for i in range(5)],
    "renal": {"egfr": 38},
}
CONTEXTS = {"small": SMALL, "typical": TYPICAL, "large": LARGE}
