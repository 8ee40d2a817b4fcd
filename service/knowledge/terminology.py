"""Drug terminology: the knowledge that tells what a code or a medication name says, and the reading of it.

The knowledge is data in rules/terminology/ (see SOURCES.md there): the shipped RxNorm value sets (opioids.csv,
naltrexone_and_related.csv), the hand-curated curated.yaml (opioid, naltrexone and antagonist names, brands,
products, ATC classes, LDN limits, bedtime words), common.yaml (the commonly prescribed other medicines, by name),
abbreviations.yaml (prescribers' shorthand) and words.yaml (the words of a medication name that are not a drug:
units, dose forms, routes, release, frequency, packaging). Each YAML file is checked against
schemas/terminology.schema.json at load; the cross-references by the loader; every file read is in `content`.

This module only reads: a code gives its entry, a text gives what it names, what is ambiguous and what is left over.
What a medication *is* (kind, recognition, evidence) is decided from these readings by service/core/medications.py,
the one public classifier. Pure: no network, no I/O after load; only the bounded memos change. Never logs: names
may be patient free text.
"""
from __future__ import annotations

import bisect
import csv
import functools
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import yaml
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .errors import KnowledgeError
from .units import MG_PER_UNIT

IngredientKind = Literal["opioid", "naltrexone", "opioid-antagonist", "other"]
NaltrexoneForm = Literal["ldn", "oral-standard", "extended-release-injection", "combination", "unspecified"]
System = Literal["rxnorm", "atc", "ndc"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT_ROOT / "schemas" / "terminology.schema.json"
CURATED_FILE, COMMON_FILE, ABBREVIATIONS_FILE, WORDS_FILE = ("curated.yaml", "common.yaml", "abbreviations.yaml",
                                                             "words.yaml")
YAML_FILES = (CURATED_FILE, COMMON_FILE, ABBREVIATIONS_FILE, WORDS_FILE)
OPIOID_CSV = "opioids.csv"
CSV_FILES = (OPIOID_CSV, "naltrexone_and_related.csv")
# Relevance: the most relevant kind among a medication's ingredients is its kind and leads its ingredient list
# (so Embeda and buprenorphine/naloxone are opioids, bupropion/naltrexone is naltrexone).
KIND_RANK = {"opioid": 0, "naltrexone": 1, "opioid-antagonist": 2, "other": 3}
RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Code-system spellings callers use: FHIR URIs, short names, and the HL7 OIDs of older (CDA, v2) feeds.
_SYSTEMS: dict[str, System] = {
    RXNORM_URI: "rxnorm", "rxnorm": "rxnorm", "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
    "http://www.whocc.no/atc": "atc", "atc": "atc", "urn:oid:2.16.840.1.113883.6.73": "atc",
    "http://hl7.org/fhir/sid/ndc": "ndc", "ndc": "ndc", "urn:oid:2.16.840.1.113883.6.69": "ndc",
}
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[^\W\d_]+")
_DOTTED = re.compile(r"\b[^\W\d_](?:\.[^\W\d_])+\b\.?")        # "b.i.d.", "q.h.s", "p.o." -> "bid", "qhs", "po"
# A mass followed by one of these is a concentration or a rate ("1 mg/mL", "10 mg/5 mL", "50 mcg/hr"), not a
# strength. "mg/day" and "mg/dose" are doses and stay.
_PER = {"ml", "l", "g", "kg", "hr", "h", "hour", "hours", "actuat"}
# Spelling: a left-over word this close to a curated name is read as it (opioid and naltrexone evidence counts).
_MIN_FUZZY_LEN, _MIN_PREFIX_LEN = 5, 5


class TerminologyError(KnowledgeError):
    """A terminology file is malformed: the message names the file and the entry. Start-up stops."""

    def __init__(self, file: Path | str, entry: str, message: str):
        super().__init__(str(file), message, field=entry)


# --- text ---------------------------------------------------------------------------------------------------------

def normalise(text: str) -> str:
    """NFKC, format characters (zero-width, soft hyphen, BOM) dropped, accents dropped, casefolded; prescribers'
    signs spelled out: "w/" with, "w/o" without, "#3" no 3, "&" and "+" and."""
    if text.isascii():                  # most names: nothing to compose, drop or strip
        t = text.lower()
    else:
        t = unicodedata.normalize("NFKC", text)
        t = "".join(ch for ch in t if unicodedata.category(ch) != "Cf").casefold().replace("μ", "mc")
        t = "".join(ch for ch in unicodedata.normalize("NFKD", t) if not unicodedata.combining(ch))
    t = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), t)
    t = re.sub(r"\bw/o\b", " without ", t)
    t = re.sub(r"\bw/", " with ", t)
    t = re.sub(r"#\s*(?=\d)", " no ", t)
    return re.sub(r"[&+]", " and ", t)


def tokens(text: str, drop: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Words and numbers of the normalised text; any other character separates."""
    return tuple(w for w in _TOKEN.findall(normalise(text)) if w not in drop)


def _is_number(token: str) -> bool:
    return token[-1].isdigit()


def _has_phrase(toks: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    firsts = {p[0] for p in phrases}
    return any(toks[i:i + len(p)] == p for i, tok in enumerate(toks) if tok in firsts for p in phrases if p[0] == tok)


def _strengths(toks: tuple[str, ...]) -> list[tuple[int, float]]:
    """(position, mg) of each "number mass-unit" in the tokens that is a strength, not a concentration."""
    found = []
    for i in range(len(toks) - 1):
        factor = MG_PER_UNIT.get(toks[i + 1])
        if factor is None or not _is_number(toks[i]):
            continue
        after = toks[i + 2:i + 5]
        after = after[1:] if after[:1] == ("per",) else after
        if after[:1] and after[0] in _PER or len(after) > 1 and _is_number(after[0]) and after[1] in _PER:
            continue
        found.append((i, round(float(toks[i]) * factor, 6)))
    return found


# --- what the data defines ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ingredient:
    name: str
    kind: IngredientKind
    opioid_class: str | None


@dataclass(frozen=True)
class Term:
    """What a curated name, synonym, brand or product name means."""
    term: str                           # as written in the data: the evidence shown to clinicians
    ingredients: tuple[str, ...]        # relevant first
    naltrexone_form: str | None         # set by a product name that fixes the form (Vivitrol, Revia, Contrave)
    file: str
    generic: bool = False               # an ingredient's name or synonym (not a brand or product name)


@dataclass(frozen=True)
class Abbreviation:
    """Prescribers' shorthand: `means` when one of `when_with` is in the same text (or always, when empty);
    otherwise a plain word (`word`, e.g. "ac" before meals), one of `may_mean`, or unclear."""
    term: str
    means: str
    when_with: frozenset[str]
    word: bool
    may_mean: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Word:
    """A word that is not a drug (unit, dose form, route...). `joins`: only known between two ingredients."""
    term: str
    category: str
    joins: bool


# --- what a text says ---------------------------------------------------------------------------------------------

Read = Literal["term", "abbreviation", "spelling"]


@dataclass(frozen=True)
class Found:
    """One drug part of a text: the words written, what they were read as, and how."""
    words: str
    term: str
    ingredients: tuple[str, ...]
    how: Read
    note: str | None = None
    naltrexone_form: str | None = None  # the product fixes it (Vivitrol, Revia, Contrave)


@dataclass(frozen=True)
class Ambiguous:
    words: str
    may_mean: tuple[str, ...]           # ingredients it may stand for (may be empty: unclear)
    note: str


@dataclass(frozen=True)
class TextReading:
    """What one text says: its drug parts in order, the ambiguous and the left-over words, markers, strength."""
    found: tuple[Found, ...]
    ingredients: tuple[str, ...]        # of `found`, relevant first
    ambiguous: tuple[Ambiguous, ...]
    leftovers: tuple[str, ...]          # words neither a known drug nor a known non-drug word
    ldn_marker: bool
    injection_marker: bool
    strength_mg: float | None           # naltrexone strength (the first after its name), else the first strength

    @property
    def complete(self) -> bool:
        """Everything in the text is understood and nothing is a guess."""
        return bool(self.found) and not self.ambiguous and not self.leftovers \
            and all(f.how != "spelling" for f in self.found)


@dataclass(frozen=True)
class CodeEntry:
    ingredients: tuple[str, ...]        # relevant first; empty for an ATC class
    kind: IngredientKind                # decided at load (a value set or an ATC class may decide it)
    opioid_class: str | None            # from an ATC class; otherwise taken from the ingredients
    reading: TextReading | None         # the code's RxNorm display, read for the naltrexone form and strength
    title: str                          # what the code is (display, ingredient or ATC class title), for evidence


Meaning = Term | Abbreviation | Word


@dataclass(frozen=True)
class _Reader:
    """Finds the data's terms in free text: whole words, longest phrase first, salt words ignored."""
    ingredients: dict[str, Ingredient]
    index: dict[tuple[str, ...], Meaning]
    salt_words: frozenset[str]
    ldn_markers: frozenset[tuple[str, ...]]
    injection_markers: frozenset[tuple[str, ...]]
    longest: dict[str, int]             # first word -> words in the longest term that starts with it
    single_words: tuple[list[str], list[Term]]  # one-word generic names and synonyms (sorted), for spelling

    def ranked(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(dict.fromkeys(names), key=lambda n: KIND_RANK[self.ingredients[n].kind]))

    def _scan(self, toks: tuple[str, ...]) -> list[tuple[int, tuple[str, ...], Meaning | None]]:
        out: list[tuple[int, tuple[str, ...], Meaning | None]] = []
        i = 0
        while i < len(toks):
            for size in range(min(self.longest.get(toks[i], 0), len(toks) - i), 0, -1):
                meaning = self.index.get(toks[i:i + size])
                if meaning is not None:
                    break
            else:
                size, meaning = 1, None
            out.append((i, toks[i:i + size], meaning))
            i += size
        return out

    def read(self, text: str) -> TextReading:
        toks = tokens(text, self.salt_words)
        found: list[tuple[int, Found]] = []
        abbreviations: list[tuple[int, str, Abbreviation]] = []
        joins: list[str] = []
        left: list[str] = []
        for i, words, meaning in self._scan(toks):
            said = " ".join(words)
            if isinstance(meaning, Term):
                found.append((i, Found(said, meaning.term, meaning.ingredients, "term", None, meaning.naltrexone_form)))
            elif isinstance(meaning, Abbreviation):
                abbreviations.append((i, said, meaning))
            elif isinstance(meaning, Word):
                if meaning.joins:
                    joins.append(said)
            elif _is_number(said) or said == "no" and i + 1 < len(toks) and _is_number(toks[i + 1]):
                continue                                    # numbers; "#30" (no 30) is a dispensed quantity
            else:
                left.append(said)
        ambiguous = self._resolve(abbreviations, found)
        leftovers = []
        for word in left:
            guess = self._spelling(word)
            if guess:
                found.append((toks.index(word), guess))
            else:
                leftovers.append(word)
        found.sort(key=lambda f: f[0])
        ingredients = self.ranked(n for _, f in found for n in f.ingredients)
        if len(ingredients) < 2:                            # "with", "and", "plus" only join two ingredients
            leftovers += joins
        # Markers and strength tell naltrexone's form only: not read for anything else.
        nal = any(self.ingredients[n].kind == "naltrexone" for n in ingredients)
        return TextReading(tuple(f for _, f in found), ingredients, tuple(ambiguous), tuple(leftovers),
                           nal and _has_phrase(toks, self.ldn_markers), nal and _has_phrase(toks, self.injection_markers),
                           self._strength(toks, found) if nal else None)

    @staticmethod
    def _resolve(abbreviations: list[tuple[int, str, Abbreviation]], found: list[tuple[int, Found]]) -> list[Ambiguous]:
        """Shorthand that means its drug next to one of its partners: adds those to `found`, returns the rest as
        ambiguous. Repeated while one resolved shorthand is another's partner ("bup/nlx")."""
        pending = list(abbreviations)
        for _ in range(len(pending)):
            context = {n for _, f in found for n in f.ingredients}
            resolved = [p for p in pending if p[2].when_with & context]
            if not resolved:
                break
            found += [(i, Found(said, a.term, (a.means,), "abbreviation", a.note)) for i, said, a in resolved]
            pending = [p for p in pending if p not in resolved]
        return [Ambiguous(said, a.may_mean, a.note) for _, said, a in pending if not a.word]

    def _strength(self, toks: tuple[str, ...], found: list[tuple[int, Found]]) -> float | None:
        # Naltrexone's strength is the first one after its name ("bupropion 90 mg / naltrexone 8 mg"), else the first.
        strengths = _strengths(toks)
        start = next((i for i, f in found if "naltrexone" in f.ingredients), 0)
        return next((mg for i, mg in strengths if i >= start), strengths[0][1] if strengths else None)

    def _spelling(self, word: str) -> Found | None:
        """An opioid or naltrexone name misspelt by one letter (two in long names) or cut short ("hydrocod"):
        read as that name, shown as a guess. Only these kinds: a guess may raise an alert, never clear one."""
        if len(word) < _MIN_FUZZY_LEN or not word.isalpha():
            return None
        names, terms = self.single_words
        hits: dict[str, Term] = {}
        if len(word) >= _MIN_PREFIX_LEN:                    # names sorted: those that begin with the word follow it
            for i in range(bisect.bisect_left(names, word), len(names)):
                if not names[i].startswith(word):
                    break
                if len(names[i]) > len(word):
                    hits[terms[i].term] = terms[i]
        for name, distance, i in process.extract(word, names, scorer=Levenshtein.distance, score_cutoff=2, limit=None):
            if distance <= _edits(name):
                hits[terms[i].term] = terms[i]
        kinds = {self.ingredients[t.ingredients[0]].kind for t in hits.values()}
        if not hits or not kinds <= {"opioid", "naltrexone"}:
            return None
        terms = sorted(hits)
        return Found(word, terms[0], self.ranked(n for t in hits.values() for n in t.ingredients), "spelling",
                     f"{word!r} read as {' or '.join(terms)} (spelling or shortening)")


def _edits(name: str) -> int:
    """Spelling slips allowed for a name: one, two from eight letters."""
    return 1 if len(name) < 8 else 2


class Terminology:
    """Loaded terminology (see load_terminology). Immutable after load; safe to share between threads."""

    def __init__(self, *, content: bytes, reader: _Reader, codes: dict[System, dict[str, CodeEntry]],
                 atc_classes: tuple[tuple[str, CodeEntry], ...], ldn_max_mg: float,
                 injection_strengths: frozenset[float], oral_min_mg: float, bedtime: frozenset[tuple[str, ...]],
                 not_bedtime: frozenset[tuple[str, ...]] = frozenset()):
        self.content = content          # exact bytes of the terminology files, framed, fixed order: hash this
        self._reader = reader
        self._codes, self._atc_classes = codes, atc_classes
        self.ldn_max_mg, self.injection_strengths, self.oral_min_mg = ldn_max_mg, injection_strengths, oral_min_mg
        self._bedtime, self._not_bedtime = bedtime, not_bedtime
        # Called per medication per request: memoised per instance, bounded so free text cannot grow it forever.
        self.read_text = functools.lru_cache(maxsize=16384)(reader.read)
        self._bedtime_memo = functools.lru_cache(maxsize=4096)(self._is_bedtime)

    def ingredient(self, name: str) -> Ingredient:
        return self._reader.ingredients[name]

    def ranked(self, names: Iterable[str]) -> tuple[str, ...]:
        """Ingredient names, deduplicated, the most relevant kind first (opioid > naltrexone > antagonist > other)."""
        return self._reader.ranked(names)

    def terms(self) -> tuple[Term, ...]:
        """Every name, synonym, brand, product and unconditional abbreviation the data defines."""
        return tuple(m for m in self._reader.index.values() if isinstance(m, Term))

    def abbreviations(self) -> tuple[Abbreviation, ...]:
        return tuple(m for m in self._reader.index.values() if isinstance(m, Abbreviation))

    def code_table(self, system: System) -> dict[str, CodeEntry]:
        """The exact codes of a system (a copy)."""
        return dict(self._codes[system])

    def atc_classes(self) -> tuple[tuple[str, CodeEntry], ...]:
        return self._atc_classes

    @staticmethod
    def system(system: str) -> System | None:
        """The code system a caller's spelling names (FHIR URI, short name, HL7 OID), or None when not one we read."""
        return _SYSTEMS.get(system.strip().lower().rstrip("/").replace("https://", "http://"))

    def read_code(self, system: System, code: str) -> tuple[str, CodeEntry] | None:
        """(the code as matched, its entry), or None when the terminology does not know it."""
        code = code.strip()
        if system == "atc":
            code = code.upper().replace(" ", "")
            # An exact code first: that is how the exceptions inside opioid classes (dextromethorphan) stay out.
            entry = self._codes["atc"].get(code) or next((e for p, e in self._atc_classes if code.startswith(p)), None)
        elif system == "ndc":
            entry = self._codes["ndc"].get(re.sub(r"[\s-]", "", code))
        else:
            entry = self._codes["rxnorm"].get(code)
        return (code, entry) if entry else None

    def is_bedtime(self, timing: str) -> bool:
        """Does the timing text say bedtime ("qhs", "at bedtime", "nightly", "q.h.s.")? Never with a negation
        ("not at bedtime"). Memoised (bounded)."""
        return self._bedtime_memo(timing)

    def _is_bedtime(self, timing: str) -> bool:
        words = tokens(timing)
        return _has_phrase(words, self._bedtime) and not _has_phrase(words, self._not_bedtime)


# --- loading ------------------------------------------------------------------------------------------------------

def _schema_check(doc: Any, schema: dict[str, Any], part: str, path: Path) -> None:
    validator = jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{part}"})
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in best.absolute_path).lstrip(".")
        entry = where or "file"
        if best.absolute_path and isinstance(doc, dict):
            node: Any = doc
            for p in list(best.absolute_path)[:2]:      # name the entry ("ingredients[3] (morphine)")
                node = node[p] if isinstance(node, (dict, list)) else None
            if isinstance(node, dict) and isinstance(node.get("name") or node.get("term"), str):
                entry += f" ({node.get('name') or node.get('term')})"
        raise TerminologyError(path, entry, best.message)


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


class _Index:
    """The one term index over all files: a term may mean one thing only."""

    def __init__(self, salt_words: frozenset[str]):
        self.salt_words = salt_words
        self.index: dict[tuple[str, ...], Meaning] = {}
        self.owners: dict[tuple[str, ...], str] = {}

    def add(self, term: str, meaning: Meaning, path: Path, entry: str) -> None:
        key = tokens(term, self.salt_words)
        if not key:
            raise TerminologyError(path, entry, f"{term!r} has no words left once punctuation and salts are dropped")
        if key in self.index:
            raise TerminologyError(path, entry, f"{term!r} is already defined by {self.owners[key]}")
        self.index[key], self.owners[key] = meaning, f"{path.name}: {entry}"


def _ingredient_terms(items: list[dict[str, Any]], kind_default: str | None, path: Path, idx: _Index,
                      ingredients: dict[str, Ingredient], atc: dict[str, str]) -> dict[str, str]:
    """Adds each ingredient, its synonyms and brands; returns its curated RxNorm codes (code -> name)."""
    rxnorm: dict[str, str] = {}
    for i, item in enumerate(items):
        name = item["name"]
        entry = f"{'ingredients' if kind_default is None else 'medicines'}[{i}] ({name})"
        kind, opioid_class = item.get("kind", kind_default), item.get("opioid_class")
        if name in ingredients:
            raise TerminologyError(path, entry, "duplicate ingredient")
        if (kind == "opioid") != (opioid_class is not None):
            raise TerminologyError(path, entry + ".opioid_class", "an opioid needs an opioid_class; other kinds none")
        ingredients[name] = Ingredient(name, kind, opioid_class)
        code = item.get("rxnorm")
        if code is not None and rxnorm.setdefault(code, name) != name:
            raise TerminologyError(path, entry + ".rxnorm", f"{code} is already given to {rxnorm[code]}")
        for code in item.get("atc") or []:
            if atc.setdefault(code, name) != name:
                raise TerminologyError(path, entry + ".atc", f"{code} is already given to {atc[code]}")
        idx.add(name, Term(name, (name,), None, path.name, True), path, entry)
        for field in ("synonyms", "brands"):
            for term in item.get(field) or []:
                idx.add(term, Term(term, (name,), None, path.name, field == "synonyms"), path, f"{entry}.{field}")
    return rxnorm


def _products(items: list[dict[str, Any]], path: Path, idx: _Index, ingredients: dict[str, Ingredient],
              only_other: bool) -> None:
    for i, item in enumerate(items):
        entry = f"products[{i}] ({item['name']})"
        parts = item["ingredients"]
        unknown = [p for p in parts if p not in ingredients]
        if unknown:
            raise TerminologyError(path, entry + ".ingredients", f"must list defined ingredients; unknown: {unknown}")
        if only_other and any(ingredients[p].kind != "other" for p in parts):
            raise TerminologyError(path, entry + ".ingredients", "common medicines hold other ingredients only")
        form = item.get("naltrexone_form")
        if form is not None and "naltrexone" not in parts:
            raise TerminologyError(path, entry + ".naltrexone_form", "only for naltrexone products")
        ranked = tuple(sorted(dict.fromkeys(parts), key=lambda n: KIND_RANK[ingredients[n].kind]))
        for term in (item["name"], *(item.get("synonyms") or [])):
            idx.add(term, Term(term, ranked, form, path.name), path, entry)


def _atc_classes(doc: dict[str, Any], path: Path, ingredients: dict[str, Ingredient], atc: dict[str, str]):
    classes = doc["atc_classes"]
    out: list[tuple[str, CodeEntry]] = []
    for kind in ("opioid", "opioid-antagonist"):
        for item in classes.get(kind) or []:
            out.append((item["prefix"], CodeEntry((), kind, item.get("opioid_class"), None,
                                                  f"ATC class {item['prefix']} ({item['title']})")))
    opioid_prefixes = tuple(p for p, e in out if e.kind == "opioid")
    exceptions = set()
    for i, item in enumerate(classes.get("exceptions") or []):
        entry = f"atc_classes.exceptions[{i}]"
        code, name = item["code"], item["ingredient"]
        if not code.startswith(opioid_prefixes):
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


def _abbreviations(doc: dict[str, Any], path: Path, idx: _Index, ingredients: dict[str, Ingredient]) -> None:
    for i, item in enumerate(doc["abbreviations"]):
        entry = f"abbreviations[{i}] ({item['term']})"
        otherwise = item.get("otherwise") or {}
        named = [item["means"], *item.get("when_with", []), *otherwise.get("may_mean", [])]
        unknown = [n for n in named if n not in ingredients]
        if unknown:
            raise TerminologyError(path, entry, f"names undefined ingredients: {unknown}")
        if not item.get("when_with") and otherwise:
            raise TerminologyError(path, entry + ".otherwise", "only an abbreviation with when_with has otherwise")
        if item.get("when_with") and not otherwise:
            raise TerminologyError(path, entry + ".otherwise", "say what it is without when_with (word, may_mean "
                                                               "or unclear)")
        if not item.get("when_with"):
            idx.add(item["term"], Term(item["term"], (item["means"],), None, path.name), path, entry)
            continue
        idx.add(item["term"], Abbreviation(item["term"], item["means"], frozenset(item["when_with"]),
                                           "word" in otherwise, tuple(otherwise.get("may_mean", [])),
                                           otherwise.get("unclear") or item["note"]), path, entry)


def _words(doc: dict[str, Any], path: Path, idx: _Index, extra: dict[str, list[str]]) -> None:
    for category, words in {**doc["words"], **extra}.items():
        joins = category == "joining"
        for j, word in enumerate(words):
            if tokens(word, idx.salt_words) in idx.index and category in extra:
                continue                                    # a marker that is also a drug term ("ldn")
            idx.add(word, Word(word, category, joins), path, f"words.{category}[{j}]")


def _read_all(directory: Path, schema_file: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    raw: dict[str, bytes] = {}
    for file in (*YAML_FILES, *CSV_FILES):
        try:
            raw[file] = (directory / file).read_bytes()
        except OSError as exc:
            raise TerminologyError(directory / file, "file", f"cannot read: {exc}") from exc
    try:
        raw[schema_file.name] = schema_file.read_bytes()
        schema = json.loads(raw[schema_file.name])
    except (OSError, ValueError) as exc:
        raise TerminologyError(schema_file, "file", f"cannot read: {exc}") from exc
    docs: dict[str, Any] = {}
    for file in YAML_FILES:
        try:
            docs[file] = yaml.safe_load(raw[file])
        except yaml.YAMLError as exc:
            raise TerminologyError(directory / file, "file", f"invalid YAML: {exc}") from exc
        _schema_check(docs[file], schema, file.removesuffix(".yaml"), directory / file)
    return raw, docs


def load_terminology(directory: Path, schema_file: Path = SCHEMA_FILE) -> Terminology:
    """Load and check rules/terminology/. Raises TerminologyError naming the file and the entry on bad data."""
    directory = Path(directory)
    raw, docs = _read_all(directory, Path(schema_file))
    # Each file framed by its name and length, in a fixed order: a hash of this changes when any byte does.
    content = b"".join(f"{f}\n{len(raw[f])}\n".encode() + raw[f] for f in sorted(raw))
    curated, path = docs[CURATED_FILE], directory / CURATED_FILE
    csv_rows = {f: _csv_rows(directory / f, raw[f]) for f in CSV_FILES}
    displays = {code: display for rows in csv_rows.values() for code, display in rows}

    idx = _Index(frozenset(w.casefold() for w in curated["salt_words"]))
    ingredients: dict[str, Ingredient] = {}
    atc: dict[str, str] = {}
    curated_rxnorm = _ingredient_terms(curated["ingredients"], None, path, idx, ingredients, atc)
    common = docs[COMMON_FILE]
    _ingredient_terms(common["medicines"], "other", directory / COMMON_FILE, idx, ingredients, atc)
    _products(curated.get("products") or [], path, idx, ingredients, only_other=False)
    _products(common.get("products") or [], directory / COMMON_FILE, idx, ingredients, only_other=True)
    _abbreviations(docs[ABBREVIATIONS_FILE], directory / ABBREVIATIONS_FILE, idx, ingredients)
    for code in curated_rxnorm:
        if code not in displays:
            raise TerminologyError(path, f"ingredient {curated_rxnorm[code]}.rxnorm",
                                   f"{code!r} is not a code in the shipped CSVs")
    atc_classes = _atc_classes(curated, path, ingredients, atc)

    ldn, forms = curated["ldn"], curated["naltrexone_forms"]
    er = forms["extended-release-injection"]
    bedtime = curated["timing"]["bedtime"]
    # Markers and timing words are known non-drug words in a name too.
    _words(docs[WORDS_FILE], directory / WORDS_FILE, idx,
           {"ldn markers": ldn["markers"], "injection markers": er["markers"],
            "bedtime": bedtime})
    # Every one-word generic name and synonym of every kind: a misspelling as near another kind's name is no guess.
    # Brand names are left out: short invented words, too many look-alikes ("Tussin" is not "Tussigon").
    single = sorted((key[0], m) for key, m in idx.index.items()
                    if isinstance(m, Term) and m.generic and len(key) == 1 and len(key[0]) >= _MIN_FUZZY_LEN)
    reader = _Reader(ingredients, idx.index, idx.salt_words,
                     frozenset(tokens(t, idx.salt_words) for t in ldn["markers"]),
                     frozenset(tokens(t, idx.salt_words) for t in er["markers"]),
                     _longest(idx.index), ([n for n, _ in single], [t for _, t in single]))
    codes = _codes(directory, path, csv_rows, displays, curated, curated_rxnorm, atc, ingredients, reader)
    return Terminology(content=content, reader=reader, codes=codes, atc_classes=atc_classes,
                       ldn_max_mg=float(ldn["max_strength_mg"]),
                       injection_strengths=frozenset(float(s) for s in er.get("strengths_mg") or []),
                       oral_min_mg=float(forms["oral-standard"]["min_strength_mg"]),
                       bedtime=frozenset(tokens(t) for t in bedtime),
                       not_bedtime=frozenset(tokens(t) for t in curated["timing"].get("negations") or []))


def _longest(index: dict[tuple[str, ...], Meaning]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in index:
        out[key[0]] = max(out.get(key[0], 0), len(key))
    return out


def _codes(directory: Path, path: Path, csv_rows: dict[str, list[tuple[str, str]]], displays: dict[str, str],
           curated: dict[str, Any], curated_rxnorm: dict[str, str], atc: dict[str, str],
           ingredients: dict[str, Ingredient], reader: _Reader) -> dict[System, dict[str, CodeEntry]]:
    # RxNorm: each CSV row's ingredients are read from its display with the curated names. A row of the opioid
    # value set is an opioid whatever the reading finds; a row of the other file is classified by its ingredients.
    rxnorm: dict[str, CodeEntry] = {}
    for file in CSV_FILES:
        for code, display in csv_rows[file]:
            reading = reader.read(display)
            if file == OPIOID_CSV:
                rxnorm[code] = CodeEntry(reading.ingredients, "opioid", None, reading, display)
            elif code not in rxnorm:
                if not reading.ingredients:
                    raise TerminologyError(directory / file, f"code {code}",
                                           f"no curated ingredient found in {display!r}: add it to {CURATED_FILE}")
                rxnorm[code] = CodeEntry(reading.ingredients, ingredients[reading.ingredients[0]].kind, None, reading,
                                         display)
    for code, name in curated_rxnorm.items():           # a curated code must name the same ingredient as its CSV row
        if name not in rxnorm[code].ingredients:
            raise TerminologyError(path, f"ingredient {name}.rxnorm",
                                   f"{code} is {displays[code]!r} in the shipped CSVs")
    ndc: dict[str, CodeEntry] = {}
    for code, parts in (curated.get("ndc") or {}).items():
        if any(p not in ingredients for p in parts):
            raise TerminologyError(path, f"ndc.{code}", "must list defined ingredients")
        ranked = reader.ranked(parts)
        ndc[re.sub(r"[\s-]", "", str(code))] = CodeEntry(ranked, ingredients[ranked[0]].kind, None, None,
                                                         "/".join(ranked))
    return {"rxnorm": rxnorm, "ndc": ndc,
            "atc": {c: CodeEntry((n,), ingredients[n].kind, None, None, n) for c, n in atc.items()}}
