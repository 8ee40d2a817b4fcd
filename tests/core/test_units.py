"""service/dose_units.py: dose texts in mg, mcg/µg/ug and g, and frequencies, as pharmacy systems send them."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.context import MAX_DAILY_DOSE_MG, MIN_DAILY_DOSE_MG
from service.core.units import (DOSE_TEXT_PATTERN, DoseTextError, administrations_per_day, dose_mg,
                                parse_dose_text)


@pytest.mark.parametrize("text,mg", [
    ("4.5 mg", 4.5), ("4.5mg", 4.5), ("4.5MG", 4.5), ("4.5 Mg", 4.5), ("4.5", 4.5), (" 4.5 mg ", 4.5),
    ("4500 mcg", 4.5), ("4500mcg", 4.5), ("4500 MCG", 4.5), ("4500 ug", 4.5), ("4500 UG", 4.5),
    ("4500 µg", 4.5), ("4500 μg", 4.5),                       # micro sign U+00B5 and Greek mu U+03BC
    ("0.0045 g", 4.5), ("0.0045g", 4.5), ("0.0045 G", 4.5),
    ("1.5 mg", 1.5), ("50 mg", 50), ("0.5 mg", 0.5), ("0.001 mg", 0.001), ("500 mg", 500), ("500.0 mg", 500),
    ("1 mcg", 0.001), ("500000 mcg", 500), ("0.5 g", 500), ("0.000001 g", 0.001), ("0.0000015 g", 0.0015),
])
def test_each_unit_form_is_normalised_to_mg(text, mg):
    assert parse_dose_text(text) == pytest.approx(mg, abs=1e-12)


@pytest.mark.parametrize("text,words", [
    ("600 mg", "600 mg, outside 0.001-500 mg"),
    ("0 mg", "outside"),
    ("0.0005 mg", "0.0005 mg, outside"),
    ("0.5 mcg", "0.0005 mg, outside"),
    ("1 g", "1000 mg, outside"),
    (".5 mg", "leading digit"),
    ("04.5 mg", "leading digit"),
    ("4.5 kg", "cannot read"),
    ("4,5 mg", "cannot read"),
    ("4.5 mg/mL", "cannot read"),
    ("1e3 mg", "cannot read"),
    ("four mg", "cannot read"),
    ("", "cannot read"),
    ("4.5\n", "cannot read"),
])
def test_unreadable_or_out_of_range_texts_are_refused_with_a_reason(text, words):
    with pytest.raises(DoseTextError, match=re.escape(words)):
        parse_dose_text(text)


def test_the_validator_converts_text_and_leaves_numbers_to_the_model():
    assert dose_mg("4500 mcg") == 4.5
    assert dose_mg(4.5) == 4.5 and dose_mg(True) is True and dose_mg(None) is None


@settings(max_examples=300, deadline=None)
@given(st.from_regex(DOSE_TEXT_PATTERN, fullmatch=True))
def test_every_text_the_published_pattern_accepts_is_a_dose_within_limits(text):
    # The pattern is the contract (openapi.yaml): whatever matches it must parse and lie within DoseMg's limits.
    assert MIN_DAILY_DOSE_MG <= parse_dose_text(text) <= MAX_DAILY_DOSE_MG


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value="0.0001", max_value="1000", places=4), st.sampled_from(["mg", "mcg", "g", "ug", ""]))
def test_the_parser_accepts_exactly_what_the_pattern_accepts(number, unit):
    text = f"{number.normalize():f} {unit}".strip()
    matches = re.fullmatch(DOSE_TEXT_PATTERN, text) is not None
    try:
        parse_dose_text(text)
        parsed = True
    except DoseTextError:
        parsed = False
    assert parsed == matches, text


@pytest.mark.parametrize("text,per_day", [
    ("daily", 1), ("Once daily", 1), ("once a day", 1), ("QD", 1), ("q24h", 1), ("every 24 hours", 1),
    ("qhs", 1), ("q.h.s.", 1), ("at bedtime", 1), ("nightly", 1), ("1 cap po at bedtime", 1),
    ("take 1 capsule by mouth every night", 1), ("every morning", 1), ("qam", 1),
    ("BID", 2), ("b.i.d.", 2), ("twice daily", 2), ("twice a day", 2), ("q12h", 2), ("every 12 hours", 2),
    ("2 times daily", 2), ("2x/day", 2),
    ("TID", 3), ("three times a day", 3), ("q8h", 3), ("QID", 4), ("q6h", 4), ("4 times per day", 4),
])
def test_frequencies_give_administrations_per_day(text, per_day):
    assert administrations_per_day(text) == per_day


@pytest.mark.parametrize("text", ["prn", "as directed", "weekly", "once weekly", "every other day", "every 5 hours",
                                  "daily or twice daily", "2 times daily at bedtime", "od", "whenever"])
def test_frequencies_that_give_no_single_daily_count_are_unknown(text):
    assert administrations_per_day(text) is None
