"""Drug recognition: is this medication an opioid, naltrexone (and which form), an antagonist, or unknown?

Data, not code: the shipped RxNorm value sets (opioids.csv, naltrexone_and_related.csv) and the hand-curated
curated.yaml in rules/terminology/. Recognition is by code first (RxNorm, then ATC, then NDC), then by
normalised name. Pure: no network, nothing mutated after load except the per-instance memo of `recognise`.
"""
from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import KnowledgeError

Kind = Literal["opioid", "naltrexone", "opioid-antagonist", "non-opioid", "unrecognized"]
NaltrexoneForm = Literal["ldn", "oral-standard", "extended-release-injection", "combination", "unspecified"]
MatchedBy = Literal["rxnorm", "atc", "ndc", "name"]

CSV_FILES = ("opioids.csv", "naltrexone_and_related.csv")
CURATED_FILE = "curated.yaml"
INGREDIENT_KINDS = ("opioid", "naltrexone", "opioid-antagonist", "non-opioid")
OPIOID_CLASSES = ("full-agonist", "partial-agonist", "mixed-agonist-antagonist", "antidiarrheal", "antitussive",
                  "anaesthetic")
PRODUCT_FORMS = ("ldn", "oral-standard", "extended-release-injection", "combination")
# Relevance order: the first kind present decides the medication's kind and leads its ingredient list.
KIND_RANK = {"opioid": 0, "naltrexone": 1, "opioid-antagonist": 2, "non-opioid": 3}
RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Code-system spellings callers use: FHIR URIs, short names, and the HL7 OIDs of older (CDA/v2) feeds.
_SYSTEMS = {
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm", "rxnorm": "rxnorm",
    "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
    "http://www.whocc.no/atc": "atc", "atc": "atc", "urn:oid:2.16.840.1.113883.6.73": "atc",
    "http://hl7.org/fhir/sid/ndc": "ndc", "ndc": "ndc", "urn:oid:2.16.840.1.113883.6.69": "ndc",
}
_ATC_CODE = re.compile(r"^[A-Z]\d\d[A-Z]{2}\d\d$")
_ATC_PREFIX = re.compile(r"^[A-Z](\d\d([A-Z]([A-Z](\d\d)?)?)?)?$")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+")
_MASS_UNITS = {"mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "mcg": 0.001, "ug": 0.001, "microgram": 0.001,
               "micrograms": 0.001, "g": 1000.0, "gm": 1000.0, "gram": 1000.0, "grams": 1000.0}
# A mass followed by one of these is a concentration or a rate (mg/mL, mcg/hr), not a strength.
_PER_UNITS = {"ml", "l", "hr", "h", "hour", "hours", "day", "actuat", "spray", "dose", "kg"}


class TerminologyError(KnowledgeError):
    """A terminology file is malformed; the message names the file and the entry."""

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


@dataclass(frozen=True)
class _Ingredient:
    name: str
    kind: str
    opioid_class: str | None


@dataclass(frozen=True)
class _Term:
    """What a name, synonym, brand or product name means."""
    term: str                           # as written in curated.yaml (shown as evidence)
    ingredients: tuple[str, ...]
    naltrexone_form: str | None


@dataclass(frozen=True)
class _Reading:
    """What a text says: the terms found in it (in order), its markers and its strengths."""
    terms: tuple[_Term, ...]
    ingredients: tuple[str, ...]
    ldn_marker: bool
    injection_marker: bool
    strength_mg: float | None


@dataclass(frozen=True)
class _CodeEntry:
    ingredients: tuple[str, ...]
    forced_kind: str | None             # the value set or ATC class decides, whatever the ingredients say
    opioid_class: str | None
    reading: _Reading | None            # the code's display text, for the naltrexone form


def _tokens(text: str, drop: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Lowercase words and numbers; punctuation separates. "w/" means with; "#3" means "no 3"."""
    t = text.casefold().replace("μ", "mc")              # casefold turns the micro sign into Greek mu
    t = re.sub(r"\bw/", " with ", t)
    t = re.sub(r"#\s*(?=\d)", " no ", t)
    return tuple(w for w in _TOKEN.findall(t) if w not in drop)


def _phrases(terms: Iterable[str], drop: frozenset[str] = frozenset()) -> frozenset[tuple[str, ...]]:
    return frozenset(p for p in (_tokens(t, drop) for t in terms) if p)


def _has_phrase(tokens: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(tokens[i:i + len(p)] == p for p in phrases for i in range(len(tokens) - len(p) + 1))


def _strengths(tokens: tuple[str, ...]) -> list[tuple[int, float]]:
    """(token position, mg) for every "number unit" that is a strength (not a concentration or rate)."""
    found = []
    for i in range(len(tokens) - 1):
        factor = _MASS_UNITS.get(tokens[i + 1])
        if factor is None or not tokens[i][-1].isdigit():
            continue
        after = tokens[i + 2:i + 4]
        if after[:1] and after[0] in _PER_UNITS or len(after) == 2 and after[0][-1].isdigit() and after[1] in _PER_UNITS:
            continue                                     # "5 mg/mL", "10 mg/5 mL", "50 mcg/hr"
        found.append((i, round(float(tokens[i]) * factor, 6)))
    return found


class Terminology:
    """Loaded terminology. Build with load_terminology(); immutable afterwards."""

    def __init__(self, *, content: bytes, ingredients: dict[str, _Ingredient], names: dict[tuple[str, ...], _Term],
                 rxnorm: dict[str, _CodeEntry], atc: dict[str, _CodeEntry], atc_classes: list[tuple[str, _CodeEntry]],
                 ndc: dict[str, _CodeEntry], salt_words: frozenset[str], ldn_max_mg: float,
                 ldn_markers: frozenset[tuple[str, ...]], injection_markers: frozenset[tuple[str, ...]],
                 injection_strengths: frozenset[float], oral_min_mg: float, bedtime: frozenset[tuple[str, ...]]):
        self.content = content
        self._ingredients = ingredients
        self._names = names
        self._longest = max((len(k) for k in names), default=0)
        self._rxnorm, self._atc, self._atc_classes, self._ndc = rxnorm, atc, atc_classes, ndc
        self._salt_words = salt_words
        self._ldn_max_mg, self._ldn_markers = ldn_max_mg, ldn_markers
        self._injection_markers, self._injection_strengths = injection_markers, injection_strengths
        self._oral_min_mg = oral_min_mg
        self._bedtime = bedtime
        # Called per medication per request: memoised per instance, bounded so free text cannot grow it forever.
        self._cached = functools.lru_cache(maxsize=16384)(self._recognise)

    # --- public -------------------------------------------------------------------------------------------------

    def recognise(self, name: str | None, codes: Sequence[tuple[str, str]] = (),
                  dose_mg: float | None = None) -> Recognition:
        """Classify one medication from its codes (first) and its name; `dose_mg` overrides a parsed strength."""
        return self._cached(name, tuple(tuple(c) for c in codes), dose_mg)

    def is_bedtime(self, timing: str) -> bool:
        """True when the timing text says bedtime (qhs, at night, nightly, ...)."""
        return _has_phrase(_tokens(timing.replace(".", "")), self._bedtime)

    # --- recognition --------------------------------------------------------------------------------------------

    def read(self, text: str) -> _Reading:
        """Find the curated terms in a text: longest phrase first, whole words only, left to right."""
        tokens = _tokens(text, self._salt_words)
        terms: list[tuple[int, _Term]] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self._longest, len(tokens) - i), 0, -1):
                term = self._names.get(tokens[i:i + size])
                if term is not None:
                    terms.append((i, term))
                    i += size
                    break
            else:
                i += 1
        ingredients = self._ranked(n for _, t in terms for n in t.ingredients)
        strengths = _strengths(tokens)
        # The strength that belongs to naltrexone: the first one after its name, else the first one at all.
        start = next((i for i, t in terms if "naltrexone" in t.ingredients), 0)
        strength = next((mg for i, mg in strengths if i >= start), strengths[0][1] if strengths else None)
        return _Reading(tuple(t for _, t in terms), ingredients, _has_phrase(tokens, self._ldn_markers),
                        _has_phrase(tokens, self._injection_markers), strength)

    def _ranked(self, names: Iterable[str]) -> tuple[str, ...]:
        unique = list(dict.fromkeys(names))
        return tuple(sorted(unique, key=lambda n: KIND_RANK[self._ingredients[n].kind]))

    def _kind(self, ingredients: tuple[str, ...]) -> str:
        return self._ingredients[ingredients[0]].kind if ingredients else "unrecognized"

    def _code_entry(self, codes: tuple[tuple[str, ...], ...]) -> tuple[str, str, _CodeEntry] | None:
        """The first recognised code: RxNorm codes before ATC before NDC, each in the order given."""
        by_system: dict[str, list[str]] = {"rxnorm": [], "atc": [], "ndc": []}
        for pair in codes:
            if len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str):
                system = _SYSTEMS.get(pair[0].strip().lower().rstrip("/").replace("https://", "http://"))
                if system:
                    by_system[system].append(pair[1].strip())
        for code in by_system["rxnorm"]:
            if code in self._rxnorm:
                return "rxnorm", code, self._rxnorm[code]
        for raw in by_system["atc"]:
            code = raw.upper().replace(" ", "")
            entry = self._atc.get(code) or next((e for p, e in self._atc_classes if code.startswith(p)), None)
            if entry is not None:
                return "atc", code, entry
        for raw in by_system["ndc"]:
            code = re.sub(r"[\s-]", "", raw)
            if code in self._ndc:
                return "ndc", raw, self._ndc[code]
        return None

    def _recognise(self, name: str | None, codes: tuple[tuple[str, ...], ...], dose_mg: float | None) -> Recognition:
        reading = self.read(name) if name else None
        hit = self._code_entry(codes)
        if hit is not None:
            matched_by, matched, entry = hit
            ingredients = entry.ingredients
            kind = entry.forced_kind or self._kind(ingredients)
            readings = [r for r in (entry.reading, reading) if r is not None]   # the code's own text first
            opioid_class = entry.opioid_class
        elif reading is not None and reading.ingredients:
            matched_by, ingredients = "name", reading.ingredients
            kind = self._kind(ingredients)
            # Evidence: the term that brought in the deciding ingredient.
            matched = next(t.term for t in reading.terms if ingredients[0] in t.ingredients)
            readings, opioid_class = [reading], None
        else:
            return UNRECOGNIZED

        if kind == "opioid":
            opioid_class = opioid_class or next((self._ingredients[n].opioid_class for n in ingredients
                                                 if self._ingredients[n].kind == "opioid"), None)
            return Recognition("opioid", ingredients, matched_by, matched, opioid_class, None, None)
        if kind != "naltrexone":
            return Recognition(kind, ingredients, matched_by, matched, None, None, None)  # type: ignore[arg-type]
        strength = dose_mg if dose_mg is not None and dose_mg > 0 else next(
            (r.strength_mg for r in readings if r.strength_mg is not None), None)
        form = self._naltrexone_form(ingredients, readings, strength)
        return Recognition("naltrexone", ingredients, matched_by, matched, None, form, strength)  # type: ignore[arg-type]

    def _naltrexone_form(self, ingredients: tuple[str, ...], readings: list[_Reading], strength: float | None) -> str:
        named = next((t.naltrexone_form for r in readings for t in r.terms if t.naltrexone_form), None)
        if named:                                        # Vivitrol, Revia, Contrave: the product says
            return named
        if any(n != "naltrexone" for n in ingredients):  # e.g. bupropion/naltrexone
            return "combination"
        if any(r.injection_marker for r in readings) or strength in self._injection_strengths:
            return "extended-release-injection"
        if strength is not None:
            if strength <= self._ldn_max_mg:
                return "ldn"
            if strength >= self._oral_min_mg:
                return "oral-standard"
        # No strength, or one between the LDN range and standard tablets: only an explicit marker says LDN.
        return "ldn" if any(r.ldn_marker for r in readings) else "unspecified"


# --- loading ----------------------------------------------------------------------------------------------------

def _str_list(value: Any, file: Path, entry: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TerminologyError(file, entry, "must be a list of non-empty strings")
    return value


def _number(value: Any, file: Path, entry: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise TerminologyError(file, entry, "must be a positive number")
    return float(value)


def _mapping(value: Any, file: Path, entry: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TerminologyError(file, entry, "must be a mapping")
    return value


def _read_csv(path: Path, data: bytes) -> list[tuple[str, str]]:
    """(code, display) of each row; every row must be an RxNorm code."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TerminologyError(path, "file", f"cannot read CSV: {exc}") from exc
    out = []
    for n, row in enumerate(rows, start=2):
        code, system, display = (row.get(k) for k in ("code", "system", "display"))
        if not code or not code.strip().isdigit() or system != RXNORM_URI or not display:
            raise TerminologyError(path, f"line {n}", "needs a numeric code, system " + RXNORM_URI + " and a display")
        out.append((code.strip(), display))
    return out


def load_terminology(directory: Path) -> Terminology:
    """Load and check rules/terminology/. Raises TerminologyError naming the file and entry on bad data."""
    directory = Path(directory)
    raw: dict[str, bytes] = {}
    for file in sorted((CURATED_FILE, *CSV_FILES)):
        try:
            raw[file] = (directory / file).read_bytes()
        except OSError as exc:
            raise TerminologyError(directory / file, "file", f"cannot read: {exc}") from exc
    # Fixed order, each file framed by its name and length, so the hash cannot be fooled by moved bytes.
    content = b"".join(f"{f}\n{len(raw[f])}\n".encode() + raw[f] for f in sorted(raw))

    path = directory / CURATED_FILE
    try:
        doc = yaml.safe_load(raw[CURATED_FILE])
    except yaml.YAMLError as exc:
        raise TerminologyError(path, "file", f"invalid YAML: {exc}") from exc
    doc = _mapping(doc, path, "file")
    csv_rows = {f: _read_csv(directory / f, raw[f]) for f in CSV_FILES}
    csv_display = {code: display for rows in csv_rows.values() for code, display in rows}

    salt_words = frozenset(w.casefold() for w in _str_list(doc.get("salt_words"), path, "salt_words"))

    # Ingredients and every name that points at them.
    ingredients: dict[str, _Ingredient] = {}
    names: dict[tuple[str, ...], _Term] = {}
    owner: dict[tuple[str, ...], str] = {}
    atc: dict[str, _CodeEntry] = {}
    curated_rxnorm: dict[str, str] = {}

    def add_name(term: str, meaning: _Term, entry: str) -> None:
        key = _tokens(term, salt_words)
        if not key:
            raise TerminologyError(path, entry, f"term {term!r} has no words left after normalisation")
        if key in names:
            raise TerminologyError(path, entry, f"term {term!r} is already defined by {owner[key]}")
        names[key], owner[key] = meaning, entry

    entries = doc.get("ingredients")
    if not isinstance(entries, list) or not entries:
        raise TerminologyError(path, "ingredients", "must be a non-empty list")
    for i, item in enumerate(entries):
        entry = f"ingredients[{i}]"
        item = _mapping(item, path, entry)
        name = item.get("name")
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise TerminologyError(path, entry, "name must be a lowercase generic name")
        entry = f"ingredients[{i}] ({name})"
        if name in ingredients:
            raise TerminologyError(path, entry, "duplicate ingredient")
        kind, opioid_class = item.get("kind"), item.get("opioid_class")
        if kind not in INGREDIENT_KINDS:
            raise TerminologyError(path, entry + ".kind", f"must be one of {', '.join(INGREDIENT_KINDS)}")
        if (kind == "opioid") != (opioid_class is not None) or opioid_class not in (None, *OPIOID_CLASSES):
            raise TerminologyError(path, entry + ".opioid_class",
                                   f"opioids need one of {', '.join(OPIOID_CLASSES)}; other kinds none")
        ingredients[name] = _Ingredient(name, kind, opioid_class)
        rx = item.get("rxnorm")
        if rx is not None:
            if not isinstance(rx, str) or rx not in csv_display:
                raise TerminologyError(path, entry + ".rxnorm", f"{rx!r} is not a code in the shipped CSVs")
            curated_rxnorm[rx] = name
        for code in _str_list(item.get("atc"), path, entry + ".atc"):
            if not _ATC_CODE.match(code):
                raise TerminologyError(path, entry + ".atc", f"{code!r} is not a full ATC code")
            if code in atc and atc[code].ingredients != (name,):
                raise TerminologyError(path, entry + ".atc", f"{code} is already given to {atc[code].ingredients[0]}")
            atc[code] = _CodeEntry((name,), None, None, None)
        meaning = _Term(name, (name,), None)
        add_name(name, meaning, entry)
        for field in ("synonyms", "brands"):
            for term in _str_list(item.get(field), path, f"{entry}.{field}"):
                add_name(term, _Term(term, (name,), None), f"{entry}.{field}")

    products = doc.get("products") or []
    if not isinstance(products, list):
        raise TerminologyError(path, "products", "must be a list")
    for i, item in enumerate(products):
        item = _mapping(item, path, f"products[{i}]")
        pname = item.get("name")
        entry = f"products[{i}] ({pname})"
        if not isinstance(pname, str) or not pname.strip():
            raise TerminologyError(path, entry, "needs a name")
        parts = _str_list(item.get("ingredients"), path, entry + ".ingredients")
        unknown = [p for p in parts if p not in ingredients]
        if not parts or unknown:
            raise TerminologyError(path, entry + ".ingredients", f"unknown or missing ingredients: {unknown}")
        form = item.get("naltrexone_form")
        if form is not None and (form not in PRODUCT_FORMS or "naltrexone" not in parts):
            raise TerminologyError(path, entry + ".naltrexone_form",
                                   f"only for naltrexone products, one of {', '.join(PRODUCT_FORMS)}")
        ranked = tuple(sorted(dict.fromkeys(parts), key=lambda n: KIND_RANK[ingredients[n].kind]))
        for term in (pname, *_str_list(item.get("synonyms"), path, entry + ".synonyms")):
            add_name(term, _Term(term, ranked, form), entry)

    # ATC classes and their exceptions.
    classes = _mapping(doc.get("atc_classes"), path, "atc_classes")
    atc_classes: list[tuple[str, _CodeEntry]] = []
    for kind in ("opioid", "opioid-antagonist"):
        for i, item in enumerate(classes.get(kind) or []):
            entry = f"atc_classes.{kind}[{i}]"
            item = _mapping(item, path, entry)
            prefix, oclass = item.get("prefix"), item.get("opioid_class")
            if not isinstance(prefix, str) or not _ATC_PREFIX.match(prefix) or len(prefix) >= 7:
                raise TerminologyError(path, entry + ".prefix", f"{prefix!r} is not an ATC class")
            if oclass not in (None, *OPIOID_CLASSES) or (oclass and kind != "opioid"):
                raise TerminologyError(path, entry + ".opioid_class", "unknown opioid class")
            atc_classes.append((prefix, _CodeEntry((), kind, oclass, None)))
    opioid_prefixes = tuple(p for p, e in atc_classes if e.forced_kind == "opioid")
    exceptions: set[str] = set()
    for i, item in enumerate(classes.get("exceptions") or []):
        entry = f"atc_classes.exceptions[{i}]"
        item = _mapping(item, path, entry)
        code, ing = item.get("code"), item.get("ingredient")
        if not isinstance(code, str) or not code.startswith(opioid_prefixes):
            raise TerminologyError(path, entry + ".code", f"{code!r} is not inside an opioid class")
        if ing not in ingredients or ingredients[ing].kind == "opioid" or atc.get(code, _CodeEntry((), None, None, None)).ingredients != (ing,):
            raise TerminologyError(path, entry, f"must name a non-opioid ingredient that lists {code}")
        exceptions.add(code)
    # A non-opioid code inside an opioid class would be read as an opioid by anyone using the class alone.
    for code, e in atc.items():
        if ingredients[e.ingredients[0]].kind != "opioid" and code.startswith(opioid_prefixes) and code not in exceptions:
            raise TerminologyError(path, f"atc {code}", f"{e.ingredients[0]} sits in an opioid class: list it under exceptions")

    ndc: dict[str, _CodeEntry] = {}
    for code, parts in _mapping(doc.get("ndc", {}), path, "ndc").items():
        parts = _str_list(parts, path, f"ndc.{code}")
        if not parts or any(p not in ingredients for p in parts):
            raise TerminologyError(path, f"ndc.{code}", "must list known ingredients")
        ndc[re.sub(r"[\s-]", "", str(code))] = _CodeEntry(
            tuple(sorted(parts, key=lambda n: KIND_RANK[ingredients[n].kind])), None, None, None)

    ldn = _mapping(doc.get("ldn"), path, "ldn")
    forms = _mapping(doc.get("naltrexone_forms"), path, "naltrexone_forms")
    er = _mapping(forms.get("extended-release-injection"), path, "naltrexone_forms.extended-release-injection")
    oral = _mapping(forms.get("oral-standard"), path, "naltrexone_forms.oral-standard")
    timing = _mapping(doc.get("timing"), path, "timing")
    bedtime = _str_list(timing.get("bedtime"), path, "timing.bedtime")
    if not bedtime:
        raise TerminologyError(path, "timing.bedtime", "must list at least one term")

    terminology = Terminology(
        content=content, ingredients=ingredients, names=names, rxnorm={}, atc=atc, atc_classes=atc_classes,
        ndc=ndc, salt_words=salt_words,
        ldn_max_mg=_number(ldn.get("max_strength_mg"), path, "ldn.max_strength_mg"),
        ldn_markers=_phrases(_str_list(ldn.get("markers"), path, "ldn.markers"), salt_words),
        injection_markers=_phrases(_str_list(er.get("markers"), path, "naltrexone_forms.extended-release-injection.markers"), salt_words),
        injection_strengths=frozenset(_number(s, path, "naltrexone_forms.extended-release-injection.strengths_mg")
                                      for s in er.get("strengths_mg") or []),
        oral_min_mg=_number(oral.get("min_strength_mg"), path, "naltrexone_forms.oral-standard.min_strength_mg"),
        bedtime=_phrases(t.replace(".", "") for t in bedtime))

    # RxNorm: each CSV row's ingredients are read from its display with the curated names. Rows of the opioid
    # value set are opioids whatever the reading finds; the other file's rows are classified by ingredient.
    rxnorm: dict[str, _CodeEntry] = {}
    for file in reversed(CSV_FILES):                   # opioids.csv last, so it wins for a code in both
        for code, display in csv_rows[file]:
            reading = terminology.read(display)
            forced = "opioid" if file == "opioids.csv" else None
            rxnorm[code] = _CodeEntry(reading.ingredients, forced, None, reading)
    for code, name in curated_rxnorm.items():
        if name not in rxnorm[code].ingredients:
            raise TerminologyError(path, f"ingredient {name}.rxnorm",
                                   f"code {code} is {csv_display[code]!r} in the shipped CSVs")
    terminology._rxnorm.update(rxnorm)                 # still loading: nothing has been recognised yet
    return terminology
