"""Drug recognition: is a medication an opioid, naltrexone (in which form), an opioid antagonist, or unknown?

The knowledge is data in rules/terminology/: the shipped RxNorm value sets (opioids.csv,
naltrexone_and_related.csv, provenance columns kept) and the hand-curated curated.yaml (names, brands,
products, ATC classes, LDN strength limit, bedtime words). Recognition is by code first (RxNorm, then ATC,
then NDC), then by normalised name. Pure: no network, no I/O after load, nothing mutated after load except
the per-instance memo of `recognise`. Never logs: names may be patient free text.
"""
from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from .errors import KnowledgeError
from .units import MG_PER_UNIT

Kind = Literal["opioid", "naltrexone", "opioid-antagonist", "non-opioid", "unrecognized"]
NaltrexoneForm = Literal["ldn", "oral-standard", "extended-release-injection", "combination", "unspecified"]
MatchedBy = Literal["rxnorm", "atc", "ndc", "name"]

CURATED_FILE = "curated.yaml"
OPIOID_CSV = "opioids.csv"
CSV_FILES = (OPIOID_CSV, "naltrexone_and_related.csv")
INGREDIENT_KINDS = ("opioid", "naltrexone", "opioid-antagonist", "non-opioid")
OPIOID_CLASSES = ("full-agonist", "partial-agonist", "mixed-agonist-antagonist", "antidiarrheal", "antitussive",
                  "anaesthetic")
PRODUCT_FORMS = ("ldn", "oral-standard", "extended-release-injection", "combination")
# Relevance: the most relevant kind among a medication's ingredients is its kind, and leads its ingredient list
# (so Embeda and buprenorphine/naloxone are opioids, bupropion/naltrexone is naltrexone).
KIND_RANK = {"opioid": 0, "naltrexone": 1, "opioid-antagonist": 2, "non-opioid": 3}
RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Code-system spellings callers use: FHIR URIs, short names, and the HL7 OIDs of older (CDA, v2) feeds.
_SYSTEMS = {
    RXNORM_URI: "rxnorm", "rxnorm": "rxnorm", "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
    "http://www.whocc.no/atc": "atc", "atc": "atc", "urn:oid:2.16.840.1.113883.6.73": "atc",
    "http://hl7.org/fhir/sid/ndc": "ndc", "ndc": "ndc", "urn:oid:2.16.840.1.113883.6.69": "ndc",
}
_ATC_CODE = re.compile(r"[A-Z]\d\d[A-Z]{2}\d\d")
_ATC_CLASS = re.compile(r"[A-Z](\d\d([A-Z]{1,2})?)?")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+")
# A mass followed by one of these is a concentration or a rate ("1 mg/mL", "10 mg/5 mL", "50 mcg/hr"), not a
# strength. "mg/day" and "mg/dose" are doses and stay.
_PER = {"ml", "l", "g", "kg", "hr", "h", "hour", "hours", "actuat"}


class TerminologyError(KnowledgeError):
    """A terminology file is malformed: the message names the file and the entry. Start-up stops."""

    def __init__(self, file: Path | str, entry: str, message: str):
        super().__init__(str(file), message, field=entry)


@dataclass(frozen=True)
class Recognition:
    kind: Kind
    ingredients: tuple[str, ...]        # generic names found, relevant ones first
    matched_by: MatchedBy | None
    matched: str | None                 # the code or the term that matched (for evidence shown to clinicians)
    opioid_class: str | None            # when kind == "opioid"
    naltrexone_form: NaltrexoneForm | None
    strength_mg: float | None           # naltrexone strength read from the name or the given dose, in mg


UNRECOGNIZED = Recognition("unrecognized", (), None, None, None, None, None)


def _tokens(text: str, drop: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Lowercase words and numbers; any other character separates. "w/" reads "with", "#3" reads "no 3"."""
    t = text.casefold().replace("μ", "mc")              # casefold turns the micro sign into Greek mu: "μg" -> "mcg"
    t = re.sub(r"\bw/", " with ", t)
    t = re.sub(r"#\s*(?=\d)", " no ", t)
    return tuple(w for w in _TOKEN.findall(t) if w not in drop)


def _phrases(terms: Iterable[str], drop: frozenset[str] = frozenset()) -> frozenset[tuple[str, ...]]:
    return frozenset(p for p in (_tokens(t, drop) for t in terms) if p)


def _has_phrase(tokens: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(tokens[i:i + len(p)] == p for p in phrases for i in range(len(tokens) - len(p) + 1))


def _is_number(token: str) -> bool:
    return token[-1].isdigit()


def _strengths(tokens: tuple[str, ...]) -> list[tuple[int, float]]:
    """(position, mg) of each "number mass-unit" in the tokens that is a strength, not a concentration."""
    found = []
    for i in range(len(tokens) - 1):
        factor = MG_PER_UNIT.get(tokens[i + 1])
        if factor is None or not _is_number(tokens[i]):
            continue
        after = tokens[i + 2:i + 5]
        after = after[1:] if after[:1] == ("per",) else after
        if after[:1] and after[0] in _PER or len(after) > 1 and _is_number(after[0]) and after[1] in _PER:
            continue
        found.append((i, round(float(tokens[i]) * factor, 6)))
    return found


@dataclass(frozen=True)
class _Ingredient:
    name: str
    kind: str
    opioid_class: str | None


@dataclass(frozen=True)
class _Term:
    """What a curated name, synonym, brand or product name means."""
    term: str                           # as written in curated.yaml: the evidence shown to clinicians
    ingredients: tuple[str, ...]        # relevant first
    naltrexone_form: str | None         # set by a product name that fixes the form (Vivitrol, Revia, Contrave)


@dataclass(frozen=True)
class _Reading:
    """What one text says: the curated terms in it (in order), its markers and the naltrexone strength."""
    terms: tuple[_Term, ...]
    ingredients: tuple[str, ...]        # relevant first
    ldn_marker: bool
    injection_marker: bool
    strength_mg: float | None


@dataclass(frozen=True)
class _Reader:
    """Finds curated terms in free text: whole words, longest phrase first, salt words ignored."""
    ingredients: dict[str, _Ingredient]
    names: dict[tuple[str, ...], _Term]
    salt_words: frozenset[str]
    ldn_markers: frozenset[tuple[str, ...]]
    injection_markers: frozenset[tuple[str, ...]]
    longest: int                        # words in the longest curated term

    def ranked(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(dict.fromkeys(names), key=lambda n: KIND_RANK[self.ingredients[n].kind]))

    def read(self, text: str) -> _Reading:
        tokens = _tokens(text, self.salt_words)
        found: list[tuple[int, _Term]] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self.longest, len(tokens) - i), 0, -1):
                if tokens[i:i + size] in self.names:
                    found.append((i, self.names[tokens[i:i + size]]))
                    break
            else:
                size = 1
            i += size
        strengths = _strengths(tokens)
        # Naltrexone's strength is the first one after its name ("bupropion 90 mg / naltrexone 8 mg"), else the first.
        start = next((i for i, t in found if "naltrexone" in t.ingredients), 0)
        strength = next((mg for i, mg in strengths if i >= start), strengths[0][1] if strengths else None)
        return _Reading(tuple(t for _, t in found), self.ranked(n for _, t in found for n in t.ingredients),
                        _has_phrase(tokens, self.ldn_markers), _has_phrase(tokens, self.injection_markers), strength)


@dataclass(frozen=True)
class _CodeEntry:
    ingredients: tuple[str, ...]        # relevant first; empty for an ATC class
    kind: str                           # decided at load (a value set or an ATC class may decide it)
    opioid_class: str | None            # from an ATC class; otherwise taken from the ingredients
    reading: _Reading | None            # the code's RxNorm display, read for the naltrexone form and strength


class Terminology:
    """Loaded terminology (see load_terminology). Immutable after load; safe to share between threads."""

    def __init__(self, *, content: bytes, reader: _Reader, rxnorm: dict[str, _CodeEntry], atc: dict[str, _CodeEntry],
                 atc_classes: tuple[tuple[str, _CodeEntry], ...], ndc: dict[str, _CodeEntry], ldn_max_mg: float,
                 injection_strengths: frozenset[float], oral_min_mg: float, bedtime: frozenset[tuple[str, ...]],
                 not_bedtime: frozenset[tuple[str, ...]] = frozenset()):
        self.content = content          # exact bytes of the terminology files, framed, fixed order: hash this
        self._reader = reader
        self._rxnorm, self._atc, self._atc_classes, self._ndc = rxnorm, atc, atc_classes, ndc
        self._ldn_max_mg, self._injection_strengths, self._oral_min_mg = ldn_max_mg, injection_strengths, oral_min_mg
        self._bedtime, self._not_bedtime = bedtime, not_bedtime
        # Called per medication per request: memoised per instance, bounded so free text cannot grow it forever.
        self._memo = functools.lru_cache(maxsize=16384)(self._recognise)
        # recognise() for callers whose codes are already a tuple of (system, code) tuples: the memo itself, without
        # recognise()'s normalising call (a third of the time of a medication list's recognition).
        self.recognise_pairs = self._memo
        self._bedtime_memo = functools.lru_cache(maxsize=4096)(self._is_bedtime)

    def recognise(self, name: str | None, codes: Sequence[tuple[str, str]] = (),
                  dose_mg: float | None = None) -> Recognition:
        """Classify one medication by its codes (first) and its name. A given dose_mg is the naltrexone strength."""
        return self._memo(name, tuple(map(tuple, codes)), dose_mg)

    def is_bedtime(self, timing: str) -> bool:
        """Does the timing text say bedtime ("qhs", "at bedtime", "nightly", "q.h.s.")? Never with a negation
        ("not at bedtime"). Memoised (bounded)."""
        return self._bedtime_memo(timing)

    def _is_bedtime(self, timing: str) -> bool:
        tokens = _tokens(timing.replace(".", ""))
        return _has_phrase(tokens, self._bedtime) and not _has_phrase(tokens, self._not_bedtime)

    def has_ldn_marker(self, text: str) -> bool:
        """Does the text name the product as low-dose ("LDN", "low dose", "compounded"), whatever strength it states?"""
        return _has_phrase(_tokens(text, self._reader.salt_words), self._reader.ldn_markers)

    def _by_code(self, codes: tuple[tuple[str, ...], ...]) -> tuple[MatchedBy, str, _CodeEntry] | None:
        """The first recognised code: RxNorm before ATC before NDC (most to least specific), each in given order."""
        given: dict[str, list[str]] = {"rxnorm": [], "atc": [], "ndc": []}
        for pair in codes:
            if len(pair) == 2 and all(isinstance(p, str) for p in pair):
                system = _SYSTEMS.get(pair[0].strip().lower().rstrip("/").replace("https://", "http://"))
                if system:
                    given[system].append(pair[1].strip())
        for code in given["rxnorm"]:
            if code in self._rxnorm:
                return "rxnorm", code, self._rxnorm[code]
        for code in (c.upper().replace(" ", "") for c in given["atc"]):
            # An exact code first: that is how the exceptions inside opioid classes (dextromethorphan) stay out.
            entry = self._atc.get(code) or next((e for p, e in self._atc_classes if code.startswith(p)), None)
            if entry:
                return "atc", code, entry
        for code in given["ndc"]:
            entry = self._ndc.get(re.sub(r"[\s-]", "", code))
            if entry:
                return "ndc", code, entry
        return None

    def _recognise(self, name: str | None, codes: tuple[tuple[str, ...], ...], dose_mg: float | None) -> Recognition:
        reading = self._reader.read(name) if name else None
        hit = self._by_code(codes)
        if hit:                                          # the code decides; the name may still tell the form
            matched_by, matched, entry = hit
            kind, ingredients, opioid_class = entry.kind, entry.ingredients, entry.opioid_class
            readings = [r for r in (entry.reading, reading) if r]
        elif reading and reading.ingredients:
            matched_by, ingredients, opioid_class, readings = "name", reading.ingredients, None, [reading]
            kind = self._reader.ingredients[ingredients[0]].kind
            matched = next(t.term for t in reading.terms if ingredients[0] in t.ingredients)
        else:
            return UNRECOGNIZED

        if kind == "opioid":
            # Opioids lead the ingredients, and only opioids have a class: the first class found is theirs.
            classes = (self._reader.ingredients[n].opioid_class for n in ingredients)
            opioid_class = opioid_class or next((c for c in classes if c), None)
            return Recognition("opioid", ingredients, matched_by, matched, opioid_class, None, None)
        if kind != "naltrexone":
            return Recognition(cast(Kind, kind), ingredients, matched_by, matched, None, None, None)
        strength = dose_mg if dose_mg is not None and dose_mg > 0 else next(
            (r.strength_mg for r in readings if r.strength_mg is not None), None)
        return Recognition("naltrexone", ingredients, matched_by, matched, None,
                           self._naltrexone_form(ingredients, readings, strength), strength)

    def _naltrexone_form(self, ingredients: tuple[str, ...], readings: list[_Reading],
                         strength: float | None) -> NaltrexoneForm:
        named = next((t.naltrexone_form for r in readings for t in r.terms if t.naltrexone_form), None)
        if named:                                        # Vivitrol, Revia, Contrave: the product says
            return cast(NaltrexoneForm, named)
        if any(n != "naltrexone" for n in ingredients):  # another active ingredient (bupropion)
            return "combination"
        if strength in self._injection_strengths or any(r.injection_marker for r in readings):
            return "extended-release-injection"
        if strength is not None and strength <= self._ldn_max_mg:
            return "ldn"
        if strength is not None and strength >= self._oral_min_mg:
            return "oral-standard"
        # No strength, or one between the LDN range and standard tablets: only an explicit marker says LDN.
        return "ldn" if any(r.ldn_marker for r in readings) else "unspecified"


# --- loading ------------------------------------------------------------------------------------------------------

def _mapping(value: Any, file: Path, entry: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TerminologyError(file, entry, "must be a mapping")
    return value


def _strings(value: Any, file: Path, entry: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TerminologyError(file, entry, "must be a list of non-empty strings")
    return value


def _positive(value: Any, file: Path, entry: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise TerminologyError(file, entry, "must be a positive number")
    return float(value)


def _csv_rows(path: Path, data: bytes) -> list[tuple[str, str]]:
    """(code, display) of each row. Every row must be an RxNorm code with a display."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TerminologyError(path, "file", f"cannot read CSV: {exc}") from exc
    out = []
    for line, row in enumerate(rows, start=2):
        code, system, display = (row.get(k) or "" for k in ("code", "system", "display"))
        if not code.isdigit() or system != RXNORM_URI or not display.strip():
            raise TerminologyError(path, f"line {line}", f"needs a numeric code, system {RXNORM_URI} and a display")
        out.append((code, display))
    return out


def _load_ingredients(doc: dict[str, Any], path: Path, csv_codes: set[str], salt_words: frozenset[str]):
    """Ingredients, the name index (names, synonyms, brands, products), exact ATC codes, curated RxNorm codes."""
    ingredients: dict[str, _Ingredient] = {}
    names: dict[tuple[str, ...], _Term] = {}
    owners: dict[tuple[str, ...], str] = {}
    atc: dict[str, str] = {}
    rxnorm: dict[str, str] = {}

    def add(term: str, meaning: _Term, entry: str) -> None:
        key = _tokens(term, salt_words)
        if not key:
            raise TerminologyError(path, entry, f"{term!r} has no words left once punctuation and salts are dropped")
        if key in names:
            raise TerminologyError(path, entry, f"{term!r} is already defined by {owners[key]}")
        names[key], owners[key] = meaning, entry

    items = doc.get("ingredients")
    if not isinstance(items, list) or not items:
        raise TerminologyError(path, "ingredients", "must be a non-empty list")
    for i, item in enumerate(items):
        item = _mapping(item, path, f"ingredients[{i}]")
        name = item.get("name")
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise TerminologyError(path, f"ingredients[{i}]", "name must be a lowercase generic name")
        entry = f"ingredients[{i}] ({name})"
        kind, opioid_class = item.get("kind"), item.get("opioid_class")
        if name in ingredients:
            raise TerminologyError(path, entry, "duplicate ingredient")
        if kind not in INGREDIENT_KINDS:
            raise TerminologyError(path, entry + ".kind", f"must be one of {', '.join(INGREDIENT_KINDS)}")
        if (opioid_class not in OPIOID_CLASSES) if kind == "opioid" else opioid_class is not None:
            raise TerminologyError(path, entry + ".opioid_class",
                                   f"an opioid needs one of {', '.join(OPIOID_CLASSES)}; other kinds none")
        ingredients[name] = _Ingredient(name, kind, opioid_class)
        code = item.get("rxnorm")
        if code is not None:
            if not isinstance(code, str) or code not in csv_codes:
                raise TerminologyError(path, entry + ".rxnorm", f"{code!r} is not a code in the shipped CSVs")
            if rxnorm.setdefault(code, name) != name:
                raise TerminologyError(path, entry + ".rxnorm", f"{code} is already given to {rxnorm[code]}")
        for code in _strings(item.get("atc"), path, entry + ".atc"):
            if not _ATC_CODE.fullmatch(code):
                raise TerminologyError(path, entry + ".atc", f"{code!r} is not a full ATC code")
            if atc.setdefault(code, name) != name:
                raise TerminologyError(path, entry + ".atc", f"{code} is already given to {atc[code]}")
        add(name, _Term(name, (name,), None), entry)
        for field in ("synonyms", "brands"):
            for term in _strings(item.get(field), path, f"{entry}.{field}"):
                add(term, _Term(term, (name,), None), f"{entry}.{field}")

    products = doc.get("products") or []
    if not isinstance(products, list):
        raise TerminologyError(path, "products", "must be a list")
    for i, item in enumerate(products):
        item = _mapping(item, path, f"products[{i}]")
        entry = f"products[{i}] ({item.get('name')})"
        if not isinstance(item.get("name"), str) or not item["name"].strip():
            raise TerminologyError(path, entry, "needs a name")
        parts = _strings(item.get("ingredients"), path, entry + ".ingredients")
        unknown = [p for p in parts if p not in ingredients]
        if not parts or unknown:
            raise TerminologyError(path, entry + ".ingredients", f"must list defined ingredients; unknown: {unknown}")
        form = item.get("naltrexone_form")
        if form is not None and (form not in PRODUCT_FORMS or "naltrexone" not in parts):
            raise TerminologyError(path, entry + ".naltrexone_form",
                                   f"only for naltrexone products, one of {', '.join(PRODUCT_FORMS)}")
        ranked = tuple(sorted(dict.fromkeys(parts), key=lambda n: KIND_RANK[ingredients[n].kind]))
        for term in (item["name"], *_strings(item.get("synonyms"), path, entry + ".synonyms")):
            add(term, _Term(term, ranked, form), entry)
    return ingredients, names, atc, rxnorm


def _load_atc_classes(doc: dict[str, Any], path: Path, ingredients: dict[str, _Ingredient], atc: dict[str, str]):
    classes = _mapping(doc.get("atc_classes"), path, "atc_classes")
    out: list[tuple[str, _CodeEntry]] = []
    for kind in ("opioid", "opioid-antagonist"):
        for i, item in enumerate(classes.get(kind) or []):
            entry = f"atc_classes.{kind}[{i}]"
            item = _mapping(item, path, entry)
            prefix, opioid_class = item.get("prefix"), item.get("opioid_class")
            if not isinstance(prefix, str) or not _ATC_CLASS.fullmatch(prefix):
                raise TerminologyError(path, entry + ".prefix", f"{prefix!r} is not an ATC class (e.g. N02A)")
            if opioid_class is not None and (kind != "opioid" or opioid_class not in OPIOID_CLASSES):
                raise TerminologyError(path, entry + ".opioid_class", f"must be one of {', '.join(OPIOID_CLASSES)}")
            out.append((prefix, _CodeEntry((), kind, opioid_class, None)))
    opioid_prefixes = tuple(p for p, e in out if e.kind == "opioid")
    exceptions = set()
    for i, item in enumerate(classes.get("exceptions") or []):
        entry = f"atc_classes.exceptions[{i}]"
        item = _mapping(item, path, entry)
        code, name = item.get("code"), item.get("ingredient")
        if not isinstance(code, str) or not code.startswith(opioid_prefixes):
            raise TerminologyError(path, entry + ".code", f"{code!r} is not inside an opioid class")
        if name not in ingredients or atc.get(code) != name or ingredients[name].kind == "opioid":
            raise TerminologyError(path, entry, f"must name the non-opioid ingredient that lists {code}")
        exceptions.add(code)
    # A non-opioid's code inside an opioid class must be declared, so the exception is visible to a reviewer.
    for code, name in atc.items():
        if ingredients[name].kind != "opioid" and code.startswith(opioid_prefixes) and code not in exceptions:
            raise TerminologyError(path, f"ingredient {name}.atc",
                                   f"{code} is in an opioid class: list it under atc_classes.exceptions")
    return tuple(out)


def load_terminology(directory: Path) -> Terminology:
    """Load and check rules/terminology/. Raises TerminologyError naming the file and the entry on bad data."""
    directory = Path(directory)
    raw: dict[str, bytes] = {}
    for file in sorted((CURATED_FILE, *CSV_FILES)):
        try:
            raw[file] = (directory / file).read_bytes()
        except OSError as exc:
            raise TerminologyError(directory / file, "file", f"cannot read: {exc}") from exc
    # Each file framed by its name and length, in a fixed order: a hash of this changes when any byte does.
    content = b"".join(f"{f}\n{len(raw[f])}\n".encode() + raw[f] for f in sorted(raw))

    path = directory / CURATED_FILE
    try:
        doc = _mapping(yaml.safe_load(raw[CURATED_FILE]), path, "file")
    except yaml.YAMLError as exc:
        raise TerminologyError(path, "file", f"invalid YAML: {exc}") from exc
    csv_rows = {f: _csv_rows(directory / f, raw[f]) for f in CSV_FILES}
    displays = {code: display for rows in csv_rows.values() for code, display in rows}

    salt_words = frozenset(w.casefold() for w in _strings(doc.get("salt_words"), path, "salt_words"))
    ingredients, names, atc, curated_rxnorm = _load_ingredients(doc, path, set(displays), salt_words)
    atc_classes = _load_atc_classes(doc, path, ingredients, atc)

    ndc = {}
    for code, parts in _mapping(doc.get("ndc", {}), path, "ndc").items():
        parts = _strings(parts, path, f"ndc.{code}")
        if not parts or any(p not in ingredients for p in parts):
            raise TerminologyError(path, f"ndc.{code}", "must list defined ingredients")
        ranked = tuple(sorted(dict.fromkeys(parts), key=lambda n: KIND_RANK[ingredients[n].kind]))
        ndc[re.sub(r"[\s-]", "", str(code))] = _CodeEntry(ranked, ingredients[ranked[0]].kind, None, None)

    ldn = _mapping(doc.get("ldn"), path, "ldn")
    forms = _mapping(doc.get("naltrexone_forms"), path, "naltrexone_forms")
    er_entry = "naltrexone_forms.extended-release-injection"
    er = _mapping(forms.get("extended-release-injection"), path, er_entry)
    oral = _mapping(forms.get("oral-standard"), path, "naltrexone_forms.oral-standard")
    bedtime = _strings(_mapping(doc.get("timing"), path, "timing").get("bedtime"), path, "timing.bedtime")
    if not bedtime:
        raise TerminologyError(path, "timing.bedtime", "must list at least one term")
    negations = _strings(_mapping(doc.get("timing"), path, "timing").get("negations"), path, "timing.negations")
    reader = _Reader(ingredients, names, salt_words,
                     _phrases(_strings(ldn.get("markers"), path, "ldn.markers"), salt_words),
                     _phrases(_strings(er.get("markers"), path, er_entry + ".markers"), salt_words),
                     max(map(len, names)))

    # RxNorm: each CSV row's ingredients are read from its display with the curated names. A row of the opioid
    # value set is an opioid whatever the reading finds; a row of the other file is classified by its ingredients.
    rxnorm: dict[str, _CodeEntry] = {}
    for file in CSV_FILES:
        for code, display in csv_rows[file]:
            reading = reader.read(display)
            if file == OPIOID_CSV:
                rxnorm[code] = _CodeEntry(reading.ingredients, "opioid", None, reading)
            elif code not in rxnorm:
                if not reading.ingredients:
                    raise TerminologyError(directory / file, f"code {code}",
                                           f"no curated ingredient found in {display!r}: add it to {CURATED_FILE}")
                rxnorm[code] = _CodeEntry(reading.ingredients, ingredients[reading.ingredients[0]].kind, None, reading)
    for code, name in curated_rxnorm.items():           # a curated code must name the same ingredient as its CSV row
        if name not in rxnorm[code].ingredients:
            raise TerminologyError(path, f"ingredient {name}.rxnorm",
                                   f"{code} is {displays[code]!r} in the shipped CSVs")

    return Terminology(
        content=content, reader=reader, rxnorm=rxnorm, atc={c: _CodeEntry((n,), ingredients[n].kind, None, None)
                                                            for c, n in atc.items()},
        atc_classes=atc_classes, ndc=ndc,
        ldn_max_mg=_positive(ldn.get("max_strength_mg"), path, "ldn.max_strength_mg"),
        injection_strengths=frozenset(_positive(s, path, er_entry + ".strengths_mg")
                                      for s in er.get("strengths_mg") or []),
        oral_min_mg=_positive(oral.get("min_strength_mg"), path, "naltrexone_forms.oral-standard.min_strength_mg"),
        bedtime=_phrases(t.replace(".", "") for t in bedtime), not_bedtime=_phrases(negations))
