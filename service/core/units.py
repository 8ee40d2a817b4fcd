"""Order quantities as pharmacy systems send them: a dose in mg, mcg or g (a number or text), and a frequency.

One regular expression, DOSE_TEXT_PATTERN, says which dose texts are accepted. It is published in the JSON Schema
of the order-check request, so a client (and schemathesis) sees exactly what the service accepts, and the parser
accepts exactly what it matches. Each unit's number range is written into the pattern, so any text it matches
lies within the limits of service.core.context.DoseMg (0.001-500 mg); the model checks those limits again.

Pure functions; nothing here logs (the text may come from a prescription).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ..knowledge.units import MG_PER_UNIT
from .context import MAX_DAILY_DOSE_MG, MIN_DAILY_DOSE_MG

# Numbers without leading zeros or a naked decimal point (ISMP: write "0.5", not ".5"), within range per unit.
_MG_NUMBER = (r"(?:(?:[1-9][0-9]?|[1-4][0-9]{2})(?:\.[0-9]{1,6})?"     # 1 - 499.999999
              r"|500(?:\.0{1,6})?"                                      # 500
              r"|0\.(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}))")   # 0.001 - 0.999999
_MCG_NUMBER = (r"(?:(?:[1-9][0-9]{0,4}|[1-4][0-9]{5})(?:\.[0-9]{1,3})?"  # 1 - 499999.999 mcg
               r"|500000(?:\.0{1,3})?)")                               # 500000 mcg
_G_NUMBER = (r"0\.(?:[1-4][0-9]{0,6}|50{0,6}|0[1-9][0-9]{0,5}|00[1-9][0-9]{0,4}|000[1-9][0-9]{0,3}"
             r"|0000[1-9][0-9]{0,2}|00000[1-9][0-9]?)")                # 0.000001 - 0.5 g
_MG = r"[mM][gG]"
_MCG = r"(?:[mM][cC][gG]|[uUµμ][gG])"                                 # mcg, ug, µg (micro sign), μg (Greek mu)
_G = r"[gG]"

# ECMA-262 and Python read it alike: no look-arounds, no named groups, no inline flags (case is spelled out).
DOSE_TEXT_PATTERN = (rf"^ *(?:{_MG_NUMBER} *(?:{_MG})?|{_MCG_NUMBER} *{_MCG}|{_G_NUMBER} *{_G}) *$")
_DOSE_TEXT = re.compile(DOSE_TEXT_PATTERN)
# What the text says, read leniently: only to explain a refusal ("600 mg is above 500 mg").
_LENIENT = re.compile(r" *([0-9]*\.?[0-9]+) *([a-zµμ]*) *", re.IGNORECASE)
_MG_PER_UNIT = {"": Decimal(1), **{unit: Decimal(str(mg)) for unit, mg in MG_PER_UNIT.items()}}   # "": a bare number
EXAMPLES = "'4.5 mg', '4500 mcg' or '0.0045 g'"


class DoseTextError(ValueError):
    """The dose text cannot be read as a dose; the message says why, in words a caller can act on."""


def _limits() -> str:
    return f"{MIN_DAILY_DOSE_MG:g}-{MAX_DAILY_DOSE_MG:g} mg"


def parse_dose_text(text: str) -> float:
    """'4.5 mg', '4500 mcg', '0.0045 g', '4.5MG', '4.5' (mg) -> 4.5. Raises DoseTextError otherwise."""
    lenient = _LENIENT.fullmatch(text)
    unit = lenient.group(2).lower() if lenient else None
    if _DOSE_TEXT.fullmatch(text) is None:
        if lenient is None or unit not in _MG_PER_UNIT:
            raise DoseTextError(f"cannot read {text!r} as a dose: give a number in mg or a text such as {EXAMPLES}")
        mg = Decimal(lenient.group(1)) * _MG_PER_UNIT[unit]
        if not Decimal(str(MIN_DAILY_DOSE_MG)) <= mg <= Decimal(str(MAX_DAILY_DOSE_MG)):
            raise DoseTextError(f"{text.strip()!r} is {mg.normalize():f} mg, outside {_limits()}")
        raise DoseTextError(f"cannot read {text!r} as a dose: write it like {EXAMPLES} (a leading digit, no leading "
                            "zeros, at most 6 decimals)")
    assert lenient is not None and unit is not None        # the strict pattern is a narrower form of the lenient one
    try:
        return float(Decimal(lenient.group(1)) * _MG_PER_UNIT[unit])
    except (InvalidOperation, KeyError) as exc:            # unreachable for text the pattern accepts
        raise DoseTextError(f"cannot read {text!r} as a dose") from exc


def dose_mg(value: object) -> object:
    """Pydantic before-validator: text is converted to mg; anything else is left to the model's own checks."""
    if isinstance(value, str):
        return parse_dose_text(value)
    return value


# --- frequency ------------------------------------------------------------------------------------------------------

MAX_PER_DAY = 24
_WORD_COUNTS = {"once": 1, "twice": 2, "three times": 3, "four times": 4}
_DAY = r"(?:daily|a day|per day|each day|every day|/ ?day|/ ?d\b)"
_TIMES_A_DAY = re.compile(rf"\b(?:(once|twice|three times|four times)|(\d+) ?(?:x|times?)) ?{_DAY}")
_EVERY_N_HOURS = re.compile(r"\b(?:q|every) ?(\d+) ?h(?:rs?|ours?)?\b")
_FIXED = (
    # once a day, including the times of day that imply it ("od" is left out: it also means "right eye")
    (r"daily|every day|each day|qd|nightly|every night|each night|at night|at bedtime|bedtime|qhs|q hs|hs|nocte"
     r"|qam|qpm|every morning|every evening|in the morning|in the evening", 1),
    (r"bid", 2),
    (r"tid", 3),
    (r"qid", 4),
)
_FIXED_RE = tuple((re.compile(rf"(?<![a-z0-9])(?:{p})(?![a-z0-9])"), n) for p, n in _FIXED)


def administrations_per_day(text: str) -> int | None:
    """'daily', 'qhs', '1 cap po at bedtime', 'BID', 'every 12 hours', '3 times a day' -> 1, 1, 1, 2, 2, 3.

    None when the text names no daily count, or names two different ones ('prn', 'weekly', 'every other day',
    'as directed', 'daily or twice daily'): the daily dose is then unknown, and the dose rules say so instead of
    guessing."""
    t = " ".join(text.lower().replace(".", "").split())         # "q.h.s." reads "qhs", "p.o." reads "po"
    found: set[int] = set()
    for m in _TIMES_A_DAY.finditer(t):
        found.add(int(m.group(2)) if m.group(2) else _WORD_COUNTS[m.group(1)])
    for m in _EVERY_N_HOURS.finditer(t):
        hours = int(m.group(1))
        found.add(24 // hours if 0 < hours <= 24 and 24 % hours == 0 else -1)
    rest = _EVERY_N_HOURS.sub(" ", _TIMES_A_DAY.sub(" ", t))   # "twice daily" must not also read as "daily"
    found.update(count for pattern, count in _FIXED_RE if pattern.search(rest))
    if len(found) != 1:
        return None
    (count,) = found
    return count if 1 <= count <= MAX_PER_DAY else None
