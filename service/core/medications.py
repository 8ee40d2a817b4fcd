"""The one medication classifier: what a medication is, from its codes, its name, its dose and its form.

Every API calls `classify` (native entries, order-check orders and profile entries, FHIR resources), so the same
medication gets the same reading everywhere. The rules it keeps:
  * every code and the name are read (no first match); opioid evidence anywhere wins
    (opioid > naltrexone > opioid antagonist > other);
  * a code and a name that disagree give the more dangerous kind, and the disagreement is in the evidence;
  * a name is fully recognised only when every word left after its known parts is a known non-drug word;
    left-over words, ambiguous shorthand, spelling guesses, a disagreement, or unknown codes without a fully read
    name make the reading "partial", which counts as unrecognised for every all-clear (`certain` is False).
The knowledge and the reading of texts and codes are in service/knowledge/terminology.py.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..knowledge.terminology import CodeEntry, NaltrexoneForm, Terminology, TextReading

Kind = Literal["opioid", "naltrexone", "opioid-antagonist", "other", "unrecognised"]
Recognition = Literal["full", "partial", "none"]
MatchedBy = Literal["rxnorm", "atc", "ndc", "name"]
EvidenceKind = Literal["code", "unknown-code", "words", "ambiguous", "spelling", "leftover", "conflict"]
KINDS: tuple[Kind, ...] = ("opioid", "naltrexone", "opioid-antagonist", "other", "unrecognised")
_RANK = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Evidence:
    """One readable item: which code or words gave which reading, or what could not be read."""
    kind: EvidenceKind
    text: str                               # shown to clinicians
    system: str | None = None               # for codes
    code: str | None = None


@dataclass(frozen=True)
class Classification:
    kind: Kind
    recognition: Recognition
    ingredients: tuple[str, ...]            # relevant first
    opioid_class: str | None                # when kind == "opioid"
    naltrexone_form: NaltrexoneForm | None  # when kind == "naltrexone"
    strength_mg: float | None               # naltrexone strength (the given dose, else the product's)
    ldn_marker: bool                        # a naltrexone name says low-dose ("LDN", "low dose", "compounded")
    evidence: tuple[Evidence, ...]
    conflict: bool                          # a code and the name disagree (the disagreement is in the evidence)
    matched_by: MatchedBy | None            # what decided the kind (first such code, else the name)
    matched: str | None                     # the code or the curated term that decided it

    @property
    def certain(self) -> bool:
        """Fully recognised: the only reading on which an all-clear may rest."""
        return self.recognition == "full"

    @property
    def needs_review(self) -> bool:
        return not self.certain

    @property
    def is_ldn(self) -> bool:
        return self.kind == "naltrexone" and self.naltrexone_form == "ldn"

    @property
    def is_standard_naltrexone(self) -> bool:
        """Standard-dose oral or extended-release naltrexone (blocks opioids fully)."""
        return self.kind == "naltrexone" and self.naltrexone_form in ("oral-standard", "extended-release-injection")

    @property
    def why(self) -> str | None:
        """Why it is not fully recognised (for "unrecognized_medications"), or None when it is."""
        if self.certain:
            return None
        if self.recognition == "none":
            unknown = [e.text for e in self.evidence if e.kind in ("unknown-code", "leftover")]
            return "not a known medication" + (f" ({'; '.join(unknown)})" if unknown else "")
        parts = [e.text for e in self.evidence if e.kind in ("leftover", "ambiguous", "spelling", "conflict")]
        if not parts:
            parts = [e.text for e in self.evidence if e.kind == "unknown-code"] or ["the name was not recognised"]
        return "partly recognised: " + "; ".join(parts)


def classify(terminology: Terminology, *, codes: Iterable[Any] = (), text: str | None = None,
             dose_mg: float | None = None, form: str | None = None) -> Classification:
    """Classify one medication. codes: (system, code) pairs or objects with .system and .code. dose_mg, when given
    and positive, is the naltrexone strength. form: the dose form text (FHIR Medication.form), read like the name.
    Memoised (bounded): medication lists repeat the same entries."""
    pairs = tuple(c if isinstance(c, tuple) else (c.system, c.code) if hasattr(c, "system") else tuple(c)
                  for c in codes) if codes else ()
    return _classify(terminology, pairs, text, dose_mg, form)


def _code_parts(terminology: Terminology, pairs: tuple[tuple[Any, ...], ...]):
    known: list[tuple[str, str, CodeEntry]] = []
    evidence: list[Evidence] = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            evidence.append(Evidence("unknown-code", f"unreadable code {pair!r}"))
            continue
        system = terminology.system(pair[0])
        hit = terminology.read_code(system, pair[1]) if system else None
        if hit is None:
            evidence.append(Evidence("unknown-code", f"code {pair[0]} {pair[1]} is not in the shipped terminology",
                                     pair[0], pair[1]))
            continue
        code, entry = hit
        known.append((system, code, entry))
        evidence.append(Evidence("code", f"{system} {code}: {entry.title} ({_kind_text(entry.kind, entry.ingredients)})",
                                 system, code))
    return known, evidence


def _kind_text(kind: str, ingredients: tuple[str, ...]) -> str:
    return kind + (f": {', '.join(ingredients)}" if ingredients else "")


def _text_evidence(reading: TextReading, terminology: Terminology, label: str) -> list[Evidence]:
    out = []
    for f in reading.found:
        kind = terminology.ingredient(f.ingredients[0]).kind
        if f.how == "spelling":
            out.append(Evidence("spelling", f"{label}: {f.note} ({kind})"))
        else:
            out.append(Evidence("words", f"{label} {f.words!r}: {f.term} ({_kind_text(kind, f.ingredients)})"
                                + (f"; {f.note}" if f.note else "")))
    for a in reading.ambiguous:
        out.append(Evidence("ambiguous", f"{label} {a.words!r} is ambiguous: {a.note}"))
    if reading.leftovers:
        out.append(Evidence("leftover", f"{label}: words not recognised: {' '.join(repr(w) for w in reading.leftovers)}"))
    return out


def _ambiguous_kind(reading: TextReading, terminology: Terminology) -> tuple[str, ...]:
    """Ingredients of ambiguous shorthand whose alternatives are all of one kind ("DH": both opioids)."""
    out: list[str] = []
    for a in reading.ambiguous:
        kinds = {terminology.ingredient(n).kind for n in a.may_mean}
        if len(kinds) == 1:
            out += a.may_mean
    return tuple(out)


@functools.lru_cache(maxsize=16384)
def _classify(terminology: Terminology, pairs: tuple[tuple[Any, ...], ...], text: str | None,
              dose_mg: float | None, form: str | None) -> Classification:
    known, evidence = _code_parts(terminology, pairs)
    readings = [(label, terminology.read_text(t)) for label, t in (("name", text), ("form", form)) if t and t.strip()]
    for label, r in readings:
        evidence += _text_evidence(r, terminology, label)
    text_ings = terminology.ranked(n for _, r in readings for n in (*r.ingredients, *_ambiguous_kind(r, terminology)))
    code_ings = terminology.ranked(n for _, _, e in known for n in e.ingredients)
    kinds = [e.kind for _, _, e in known] + [terminology.ingredient(n).kind for n in text_ings]
    if not kinds:                        # ambiguous shorthand alone ("HC 1% cream") is partly recognised
        partial = any(r.ambiguous for _, r in readings)
        return Classification("unrecognised", "partial" if partial else "none", (), None, None, None,
                              _ldn_marker(readings), tuple(evidence), False, None, None)
    kind = min(kinds, key=_RANK.__getitem__)
    conflict = _conflict(known, text_ings, terminology)
    if conflict:
        evidence.append(Evidence("conflict", f"the code says {conflict[0]}, the name says {conflict[1]}: read as "
                                             f"{kind}, the more dangerous"))
    ingredients = terminology.ranked((*code_ings, *text_ings))
    recognition = _recognition(readings, known, pairs, bool(conflict))
    matched_by, matched = _decider(kind, known, readings, terminology)
    opioid_class = _opioid_class(terminology, known, ingredients) if kind == "opioid" else None
    form_, strength = _naltrexone(terminology, known, readings, ingredients, dose_mg) if kind == "naltrexone" \
        else (None, None)
    return Classification(kind, recognition, ingredients, opioid_class, form_, strength, _ldn_marker(readings),
                          tuple(evidence), bool(conflict), matched_by, matched)


def _opioid_class(terminology: Terminology, known: list[tuple[str, str, CodeEntry]],
                  ingredients: tuple[str, ...]) -> str | None:
    """An ATC class's opioid class, else the first opioid ingredient's (only opioids have one)."""
    classes = [e.opioid_class for _, _, e in known if e.kind == "opioid" and e.opioid_class]
    classes += [terminology.ingredient(n).opioid_class for n in ingredients]
    return next((c for c in classes if c), None)


def _naltrexone(terminology: Terminology, known: list[tuple[str, str, CodeEntry]],
                readings: list[tuple[str, TextReading]], ingredients: tuple[str, ...],
                dose_mg: float | None) -> tuple[NaltrexoneForm, float | None]:
    """(form, strength): the given dose is the strength; else the name's, else the code display's."""
    texts = [r for _, r in readings] + [e.reading for _, _, e in known if e.reading]
    strength = dose_mg if dose_mg is not None and dose_mg > 0 else next(
        (r.strength_mg for r in texts if r.strength_mg is not None), None)
    return _naltrexone_form(terminology, ingredients, texts, strength), strength


def _ldn_marker(readings: list[tuple[str, TextReading]]) -> bool:
    return any(r.ldn_marker for label, r in readings if label == "name")


def _conflict(known: list[tuple[str, str, CodeEntry]], text_ings: tuple[str, ...],
              terminology: Terminology) -> tuple[str, str] | None:
    """(what the code says, what the name says) when their kinds differ and neither names a part of the other."""
    if not known or not text_ings:
        return None
    name_kind = terminology.ingredient(text_ings[0]).kind
    names = set(text_ings)
    for system, code, entry in known:
        parts = set(entry.ingredients)
        if entry.kind != name_kind and not (parts and (parts <= names or names <= parts)):
            return (f"{entry.kind} ({system} {code}: {entry.title})", f"{name_kind} ({', '.join(text_ings)})")
    return None


def _recognition(readings: list[tuple[str, TextReading]], known: list, pairs: tuple, conflict: bool) -> Recognition:
    name = next((r for label, r in readings if label == "name"), None)
    if conflict or any(r.leftovers or r.ambiguous or not r.complete and r.found for _, r in readings):
        return "partial"
    if name is not None and not name.found:
        return "partial"                 # codes were read, but the name given says nothing we know
    unknown_codes = len(pairs) > len(known)
    # The shipped code sets are opioids and naltrexone only: a routine medicine's code is unknown, its name tells.
    if unknown_codes and not (name is not None and name.complete):
        return "partial"
    return "full"


def _decider(kind: str, known: list[tuple[str, str, CodeEntry]], readings: list[tuple[str, TextReading]],
             terminology: Terminology) -> tuple[MatchedBy | None, str | None]:
    for system, code, entry in known:
        if entry.kind == kind:
            return system, code
    for _, r in readings:
        for f in r.found:
            if any(terminology.ingredient(n).kind == kind for n in f.ingredients):
                return "name", f.term
    return "name", None


def _naltrexone_form(terminology: Terminology, ingredients: tuple[str, ...], readings: list[TextReading],
                     strength: float | None) -> NaltrexoneForm:
    named = next((f.naltrexone_form for r in readings for f in r.found if f.naltrexone_form), None)
    if named:                                        # Vivitrol, Revia, Contrave: the product says
        return named  # type: ignore[return-value]
    if any(n != "naltrexone" for n in ingredients):  # another active ingredient (bupropion)
        return "combination"
    if strength in terminology.injection_strengths or any(r.injection_marker for r in readings):
        return "extended-release-injection"
    if strength is not None and strength <= terminology.ldn_max_mg:
        return "ldn"
    if strength is not None and strength >= terminology.oral_min_mg:
        return "oral-standard"
    # No strength, or one between the LDN range and standard tablets: only an explicit marker says LDN.
    return "ldn" if any(r.ldn_marker for r in readings) else "unspecified"

