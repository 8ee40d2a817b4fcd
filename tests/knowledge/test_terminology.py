"""Drug recognition against the shipped terminology in rules/terminology: the knowledge and its loading
(service/knowledge/terminology.py), read through the one classifier (service/core/medications.py)."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.medications import KINDS, Classification, classify
from service.knowledge.errors import KnowledgeError
from service.knowledge.terminology import Terminology, TerminologyError, load_terminology

ROOT = Path(__file__).resolve().parents[2]
TERMINOLOGY = ROOT / "rules" / "terminology"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "terminology"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
NDC = "http://hl7.org/fhir/sid/ndc"


def _rows(file: str) -> list[dict[str, str]]:
    with open(TERMINOLOGY / file, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


OPIOID_ROWS = _rows("opioids.csv")


@pytest.fixture(scope="module")
def term() -> _Term:
    return _Term(load_terminology(TERMINOLOGY))


def rx(code: str) -> list[tuple[str, str]]:
    return [(RXNORM, code)]


class _Term:
    """The terminology read through the classifier, as these tests were first written: recognise(name, codes, dose)."""

    def __init__(self, terminology: Terminology):
        self.terminology = terminology
        self.content = terminology.content

    def recognise(self, name=None, codes=(), dose_mg=None) -> Classification:
        return classify(self.terminology, codes=codes, text=name, dose_mg=dose_mg)

    def is_bedtime(self, timing: str) -> bool:
        return self.terminology.is_bedtime(timing)


# --- the shipped files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("file", ["opioids.csv", "naltrexone_and_related.csv"])
def test_shipped_csv_is_a_byte_for_byte_copy_of_the_shared_file(file):
    assert (TERMINOLOGY / file).read_bytes() == (SHARED / file).read_bytes()


def test_sources_md_keeps_the_shared_readme_and_describes_the_curated_file():
    text = (TERMINOLOGY / "SOURCES.md").read_text(encoding="utf-8")
    assert text.startswith((SHARED / "README.md").read_text(encoding="utf-8"))
    assert "curated.yaml" in text


def test_content_is_every_terminology_file_in_a_fixed_order(term, tmp_path):
    for file in ("curated.yaml", "common.yaml", "abbreviations.yaml", "words.yaml", "naltrexone_and_related.csv",
                 "opioids.csv"):
        assert (TERMINOLOGY / file).read_bytes() in term.content
    assert load_terminology(TERMINOLOGY).content == term.content
    shutil.copytree(TERMINOLOGY, tmp_path / "t")
    with open(tmp_path / "t" / "curated.yaml", "a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    assert load_terminology(tmp_path / "t").content != term.content


# --- by name -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Percocet", "Norco", "OxyContin", "Suboxone", "Duragesic", "Ultram", "Dilaudid",
                                  "Tylenol #3"])
def test_brands_from_the_issue_are_opioids_by_name(term, name):
    r = term.recognise(name)
    assert (r.kind, r.matched_by) == ("opioid", "name")
    assert r.ingredients and r.opioid_class


@pytest.mark.parametrize("name, ingredient", [
    ("fentaNYL", "fentanyl"),
    ("HYDROmorphone", "hydromorphone"),
    ("Percocet 5/325", "oxycodone"),
    ("Tylenol #3", "codeine"),
    ("Tylenol w/ Codeine No. 3", "codeine"),
    ("Oxycodone HCl 5 mg tab", "oxycodone"),
    ("APAP/hydrocodone", "hydrocodone"),
    ("oxycodone10mg", "oxycodone"),
    ("MSO4 2 mg IV", "morphine"),
    ("pethidine 50 mg", "meperidine"),
    ("Imodium A-D", "loperamide"),
    ("Lomotil", "diphenoxylate"),
    ("opium tincture 10 mg/mL", "opium"),
    ("paregoric", "opium"),
])
def test_name_variants_are_read(term, name, ingredient):
    r = term.recognise(name)
    assert r.kind == "opioid"
    assert r.ingredients[0] == ingredient


def test_names_match_whole_words_only(term):
    assert term.recognise("HYDROmorphone 2 mg").ingredients == ("hydromorphone",)    # not also "morphine"
    assert term.recognise("methylnaltrexone bromide 12 mg injection").kind == "opioid-antagonist"
    assert term.recognise("methyl naltrexone").kind == "opioid-antagonist"
    assert term.recognise("Tylenol 325 mg").kind == "other"                       # not Tylenol #3


def test_ambiguous_ms_is_not_read_as_morphine(term):
    # "MS" also means magnesium sulfate and multiple sclerosis (a common reason for LDN).
    assert (term.recognise("MS 15 mg").kind, term.recognise("MS 15 mg").recognition) == ("unrecognised", "partial")
    assert term.recognise("MS Contin 15 mg").kind == "opioid"


@pytest.mark.parametrize("name", ["remifentanil", "sufentanil", "alfentanil", "fentanyl citrate 50 mcg/mL injection",
                                  "HYDROmorphone 0.2 mg/mL PCA syringe", "morphine sulfate 4 mg/mL injection",
                                  "Sublimaze 100 mcg/2 mL", "meperidine 25 mg/mL injection"])
def test_hospital_injectables_are_opioids_by_name(term, name):
    assert term.recognise(name).kind == "opioid"


def test_anaesthetic_opioids_carry_their_class(term):
    assert term.recognise("remifentanil 1 mg vial").opioid_class == "anaesthetic"


@pytest.mark.parametrize("name", ["promethazine with codeine", "Tussionex", "guaifenesin/codeine",
                                  "homatropine/hydrocodone", "Robitussin AC", "Cheratussin AC", "Hycodan",
                                  "Tuzistra XR", "pholcodine 1 mg/mL oral solution"])
def test_cough_and_cold_opioids_are_opioids(term, name):
    assert term.recognise(name).kind == "opioid"


@pytest.mark.parametrize("name", ["Promethazine DM", "dextromethorphan", "Robitussin DM", "noscapine",
                                  "Lucemyra 0.18 mg"])
def test_non_opioid_look_alikes_are_not_opioids(term, name):
    assert term.recognise(name).kind == "other"


def test_opioid_recognised_by_display_name_for_every_value_set_row(term):
    missed = [row["display"] for row in OPIOID_ROWS if term.recognise(row["display"]).kind != "opioid"]
    assert missed == []


# --- by code -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", OPIOID_ROWS, ids=lambda row: row["code"])
def test_every_rxnorm_code_in_the_opioid_value_set_is_an_opioid(term, row):
    r = term.recognise(None, rx(row["code"]))
    assert (r.kind, r.matched_by, r.matched) == ("opioid", "rxnorm", row["code"])
    assert r.ingredients, "the curated names should find the ingredient in the display"
    assert r.opioid_class is not None


NALTREXONE_CSV_EXPECTED = {
    "7242": ("opioid-antagonist", None),                       # naloxone
    "7243": ("naltrexone", "unspecified"),                     # naltrexone ingredient: no strength, no form
    "637213": ("naltrexone", "extended-release-injection"),    # 380 mg injection
    "1483744": ("naltrexone", "oral-standard"),                # 50 mg tablet
    "1551468": ("naltrexone", "combination"),                  # bupropion/naltrexone
    "1190568": ("opioid", None),                               # atropine/diphenoxylate solution
    "1190572": ("opioid", None),                               # atropine/diphenoxylate tablet
    "1190738": ("opioid", None),                               # atropine/difenoxin tablet
    "1191222": ("opioid-antagonist", None), "1191234": ("opioid-antagonist", None),
    "1191250": ("opioid-antagonist", None), "1659929": ("opioid-antagonist", None),
    "1725059": ("opioid-antagonist", None), "1870933": ("opioid-antagonist", None),
    "199059": ("opioid-antagonist", None),                     # nalmefene
    "2540703": ("opioid-antagonist", None), "2589612": ("opioid-antagonist", None),
    "2592953": ("opioid-antagonist", None),                    # nalmefene
    "2596175": ("opioid-antagonist", None),
    "2639721": ("opioid-antagonist", None),                    # nalmefene
}


def test_expectations_cover_every_naltrexone_csv_code():
    assert {row["code"] for row in _rows("naltrexone_and_related.csv")} == set(NALTREXONE_CSV_EXPECTED)


@pytest.mark.parametrize("code, expected", sorted(NALTREXONE_CSV_EXPECTED.items()))
def test_naltrexone_and_related_rows_get_their_kind_and_form(term, code, expected):
    r = term.recognise(None, rx(code))
    assert (r.kind, r.naltrexone_form) == expected
    assert r.matched_by == "rxnorm"


def test_antidiarrheal_rows_are_opioids_of_that_class(term):
    r = term.recognise(None, rx("1190738"))
    assert r.ingredients[0] == "difenoxin" and r.opioid_class == "antidiarrheal"


def test_naltrexone_csv_product_strengths(term):
    assert term.recognise(None, rx("637213")).strength_mg == 380
    assert term.recognise(None, rx("1483744")).strength_mg == 50
    assert term.recognise(None, rx("1551468")).strength_mg == 8        # the naltrexone part, not the bupropion


def test_embeda_is_an_opioid_by_code_and_by_name(term):
    for r in (term.recognise(None, rx("863845")), term.recognise("Embeda 20 mg/0.8 mg capsule")):
        assert r.kind == "opioid"
        assert r.ingredients[:2] == ("morphine", "naltrexone")
        assert r.naltrexone_form is None


def test_naloxone_alone_is_not_an_opioid_but_buprenorphine_naloxone_is(term):
    assert term.recognise("naloxone").kind == "opioid-antagonist"
    assert term.recognise("Narcan 4 mg nasal spray").kind == "opioid-antagonist"
    assert term.recognise(None, rx("7242")).kind == "opioid-antagonist"
    assert term.recognise("nalmefene").kind == "opioid-antagonist"
    for name in ("buprenorphine/naloxone", "buprenorphine 8 mg / naloxone 2 mg sublingual film", "Suboxone",
                 "Zubsolv"):
        r = term.recognise(name)
        assert r.kind == "opioid" and r.ingredients == ("buprenorphine", "naloxone")


@pytest.mark.parametrize("system", [ATC, "atc", "ATC", "urn:oid:2.16.840.1.113883.6.73"])
@pytest.mark.parametrize("code, kind", [("N02AA01", "opioid"), ("R05DA04", "opioid"), ("R05DA09", "other"),
                                        ("N07BC04", "other"), ("N07BC02", "opioid"), ("A07DA03", "opioid"),
                                        ("N07BB04", "naltrexone"), ("V03AB15", "opioid-antagonist"),
                                        ("N07BB05", "opioid-antagonist")])
def test_atc_codes(term, system, code, kind):
    r = term.recognise(None, [(system, code)])
    assert (r.kind, r.matched_by, r.matched) == (kind, "atc", code)


def test_atc_class_prefix_recognises_codes_not_listed_on_an_ingredient(term):
    r = term.recognise(None, [("atc", "N02AB01")])               # ketobemidone: only its class is curated
    assert (r.kind, r.ingredients) == ("opioid", ())
    assert term.recognise(None, [("atc", "R05FA02")]).opioid_class == "antitussive"
    assert term.recognise(None, [("atc", "N06AB06")]).kind == "unrecognised"   # sertraline


@pytest.mark.parametrize("system", [RXNORM, "rxnorm", "RxNorm", RXNORM + "/"])
def test_rxnorm_system_spellings(term, system):
    assert term.recognise(None, [(system, "1049621")]).kind == "opioid"


@pytest.mark.parametrize("system", [NDC, "ndc"])
def test_an_ndc_alone_is_unrecognised(term, system):
    r = term.recognise(None, [(system, "00406-0512-01")])
    assert (r.kind, r.recognition, r.ingredients, r.matched_by) == ("unrecognised", "none", (), None)
    assert [e.kind for e in r.evidence] == ["unknown-code"]


def test_an_unknown_code_falls_back_to_the_name(term):
    r = term.recognise("Percocet 5/325", [(NDC, "00406-0512-01"), (RXNORM, "999999999")])
    assert (r.kind, r.matched_by, r.matched) == ("opioid", "name", "Percocet")


def test_a_code_and_a_name_that_disagree_give_the_more_dangerous_kind(term):
    r = term.recognise("oxycodone 5 mg tablet", rx("7242"))             # a naloxone code, an opioid name
    assert (r.kind, r.matched_by, r.ingredients, r.conflict) == ("opioid", "name", ("oxycodone", "naloxone"), True)
    assert r.recognition == "partial" and "the code says" in r.why
    assert term.recognise("naloxone", rx("1049621")).kind == "opioid"
    assert term.recognise("dextromethorphan", [("atc", "R05DA04")]).kind == "opioid"


def test_rxnorm_beats_atc(term):
    assert term.recognise(None, [("atc", "R05DA09"), ("rxnorm", "2670")]).matched_by == "rxnorm"


# --- naltrexone forms and strength ---------------------------------------------------------------------------

def test_compounded_ldn(term):
    r = term.recognise("Naltrexone 4.5 mg capsule (compounded)")
    assert (r.kind, r.naltrexone_form, r.strength_mg) == ("naltrexone", "ldn", 4.5)


def test_compounded_ldn_with_the_ingredient_code(term):
    # Compounded LDN has no product code: the ingredient code says naltrexone, the text says LDN.
    r = term.recognise("Naltrexone 4.5 mg capsule (compounded)", rx("7243"))
    assert (r.kind, r.matched_by, r.naltrexone_form, r.strength_mg) == ("naltrexone", "rxnorm", "ldn", 4.5)


@pytest.mark.parametrize("name", ["naltrexone 4.5mg", "naltrexone 4500 mcg", "naltrexone 0.0045 g",
                                  "LDN 4.5 mg", "Naltrexone 4.5 MG Oral Capsule"])
def test_strength_units(term, name):
    r = term.recognise(name)
    assert (r.naltrexone_form, r.strength_mg) == ("ldn", 4.5)


def test_ldn_markers_without_strength(term):
    assert term.recognise("low dose naltrexone").naltrexone_form == "ldn"
    assert term.recognise("naltrexone compounded capsule").naltrexone_form == "ldn"
    assert term.recognise("naltrexone").naltrexone_form == "unspecified"


def test_ldn_strength_limit_is_16_mg(term):
    assert term.recognise("naltrexone 16 mg").naltrexone_form == "ldn"
    assert term.recognise("naltrexone 20 mg").naltrexone_form == "unspecified"
    assert term.recognise("naltrexone 25 mg").naltrexone_form == "oral-standard"


def test_a_concentration_is_not_a_strength(term):
    r = term.recognise("naltrexone 1 mg/mL oral suspension (compounded)")
    assert (r.naltrexone_form, r.strength_mg) == ("ldn", None)


def test_dose_overrides_the_strength_in_the_name(term):
    r = term.recognise("naltrexone 50 mg tablet", dose_mg=3.0)    # a 50 mg tablet dissolved to make LDN
    assert (r.naltrexone_form, r.strength_mg) == ("ldn", 3.0)
    assert term.recognise("naltrexone", dose_mg=4.5).naltrexone_form == "ldn"


def test_standard_naltrexone(term):
    r = term.recognise("naltrexone 50 mg tablet")
    assert (r.kind, r.naltrexone_form, r.strength_mg) == ("naltrexone", "oral-standard", 50)
    assert term.recognise("Revia").naltrexone_form == "oral-standard"


@pytest.mark.parametrize("name", ["Contrave", "bupropion/naltrexone", "Contrave 8 mg/90 mg ER tablet",
                                  "naltrexone 8 mg / bupropion 90 mg extended release tablet"])
def test_naltrexone_bupropion_is_a_combination(term, name):
    r = term.recognise(name)
    assert (r.kind, r.naltrexone_form) == ("naltrexone", "combination")
    assert r.ingredients == ("naltrexone", "bupropion")


@pytest.mark.parametrize("name", ["Vivitrol", "Vivitrol 380 mg", "naltrexone 380 mg",
                                  "naltrexone ER injectable suspension"])
def test_extended_release_injection(term, name):
    assert term.recognise(name).naltrexone_form == "extended-release-injection"


def test_non_naltrexone_kinds_have_no_form_or_strength(term):
    for name in ("Embeda", "Percocet 5/325", "naloxone 4 mg", "methylnaltrexone 12 mg"):
        r = term.recognise(name, dose_mg=4.0)
        assert (r.naltrexone_form, r.strength_mg) == (None, None)


# --- unrecognised --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Zorvexa 500 mg", "", "   ", "mg", "5/325", None])
def test_unrecognised(term, name):
    r = term.recognise(name)
    assert (r.kind, r.recognition, r.ingredients, r.matched_by, r.matched) == ("unrecognised", "none", (), None, None)


# --- timing --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("timing", ["bedtime", "at bedtime", "At Bedtime", "qhs", "QHS", "q.h.s.", "HS", "h.s.",
                                    "nightly", "at night", "every night", "1 cap PO at bedtime", "nocte",
                                    "before bed", "at bed time", "bed time", "q night", "qnight", "qhs", "hs"])
def test_bedtime(term, timing):
    assert term.is_bedtime(timing)


@pytest.mark.parametrize("timing", ["every morning", "qam", "in the morning", "twice daily", "BID", "evening",
                                    "qpm", "with breakfast", "",
                                    # negations are never bedtime (issue 11)
                                    "not at bedtime", "no bedtime dose", "avoid bedtime", "NOT at bedtime",
                                    "never at night", "don't take at bedtime", "avoid qhs (vivid dreams)"])
def test_not_bedtime(term, timing):
    assert not term.is_bedtime(timing)


# --- memo and robustness -------------------------------------------------------------------------------------

def test_classify_is_memoised(term):
    args = ("Percocet 5/325", ((RXNORM, "1049621"),), None)
    assert term.recognise(*args) is term.recognise(*args)
    assert term.recognise("Percocet 5/325", [[RXNORM, "1049621"]]) is term.recognise(*args)  # lists are fine too


@settings(max_examples=300, deadline=None)
@given(name=st.none() | st.text(max_size=80),
       codes=st.lists(st.tuples(st.sampled_from(["rxnorm", "atc", "ndc", "snomed", RXNORM, ""]), st.text(max_size=12)),
                      max_size=3),
       dose=st.none() | st.floats(min_value=0.001, max_value=500))
def test_recognise_never_fails_and_answers_consistently(term, name, codes, dose):
    r = term.recognise(name, codes, dose)
    assert r.kind in KINDS
    assert (r.kind == "unrecognised") == (r.matched_by is None)
    assert (r.recognition == "none") <= (r.kind == "unrecognised")
    assert r.certain == (r.recognition == "full") and (r.why is None) == r.certain
    assert (r.naltrexone_form is not None) == (r.kind == "naltrexone")
    assert r.opioid_class is None or r.kind == "opioid"


# --- malformed data ------------------------------------------------------------------------------------------

def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "terminology"
    shutil.copytree(TERMINOLOGY, target)
    curated = target / "curated.yaml"
    text = curated.read_text(encoding="utf-8")
    assert old in text, old
    curated.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


@pytest.mark.parametrize("old, new, named", [
    ("ingredients:\n", "ingredients: [\n", "file"),                                     # not YAML
    ('rxnorm: "7052"', 'rxnorm: "9999999"', "morphine"),                               # an invented code
    ('rxnorm: "7052"', 'rxnorm: "7242"', "morphine"),                                  # naloxone's code on morphine
    ("opioid_class: partial-agonist\n    rxnorm: \"1819\"", "rxnorm: \"1819\"", "buprenorphine"),  # class missing
    ("kind: opioid\n    opioid_class: full-agonist\n    rxnorm: \"7052\"",
     "kind: opiate\n    opioid_class: full-agonist\n    rxnorm: \"7052\"", "morphine"),
    ("atc: [N02AA01]", "atc: [N02AA1]", "morphine"),
    ("{name: Percocet, ingredients: [oxycodone, acetaminophen]}",
     "{name: Percocet, ingredients: [oxycodon, acetaminophen]}", "Percocet"),
    ("{name: Norco, ingredients", "{name: Percocet, ingredients", "Percocet"),          # a term defined twice
    ("    - {code: R05DA09, ingredient: dextromethorphan}\n", "", "dextromethorphan"),      # exception not declared
    ("max_strength_mg: 16", "max_strength_mg: sixteen", "ldn.max_strength_mg"),
])
def test_malformed_curated_yaml_names_the_file_and_entry(tmp_path, old, new, named):
    with pytest.raises(TerminologyError) as info:
        load_terminology(_copy_with(tmp_path, old, new))
    assert "curated.yaml" in str(info.value)
    assert named in str(info.value)
    assert isinstance(info.value, KnowledgeError)          # start-up stops like any other knowledge error


def test_missing_file_is_named(tmp_path):
    target = tmp_path / "terminology"
    shutil.copytree(TERMINOLOGY, target)
    (target / "opioids.csv").unlink()
    with pytest.raises(TerminologyError, match="opioids.csv"):
        load_terminology(target)


def _copy_editing(tmp_path: Path, file: str, old: str, new: str) -> Path:
    target = tmp_path / "terminology"
    shutil.copytree(TERMINOLOGY, target)
    text = (target / file).read_text(encoding="utf-8")
    assert old in text, old
    (target / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


@pytest.mark.parametrize("file, old, new, named", [
    ("common.yaml", "{name: atorvastatin, brands: [Lipitor]}", "{name: oxycodone, brands: [Lipitor]}", "oxycodone"),
    ("common.yaml", "{name: atorvastatin, brands: [Lipitor]}", "{name: atorvastatin, brands: [Percocet]}",
     "atorvastatin"),                                                       # an opioid brand on a common medicine
    ("common.yaml", "{name: atorvastatin, brands: [Lipitor]}", "{name: atorvastatin, rxnorm: \"83367\"}",
     "medicines[0]"),                                                       # names only: no codes
    ("common.yaml", "ingredients: [amoxicillin, clavulanate]", "ingredients: [amoxicillin, codeine]", "Augmentin"),
    ("common.yaml", "{name: atorvastatin, brands: [Lipitor]}", "{name: Atorvastatin}", "medicines[0]"),
    ("abbreviations.yaml", "means: hydrocodone\n    when_with: [acetaminophen,",
     "means: hydrocodon\n    when_with: [acetaminophen,", "HC"),
    ("abbreviations.yaml", "    otherwise: {word: \"before meals (ante cibum)\"}\n", "", "AC"),
    ("abbreviations.yaml", "{term: cod, means: codeine,", "{term: cod, means: codeine, when: x,", "abbreviations[0]"),
    ("words.yaml", "  joining: [with, and, plus", "  joining: [with, and, codeine", "joining"),   # a drug as a word
    ("words.yaml", "  joining: [with, and, plus", "  joining: [with, and, 3", "joining"),
])
def test_malformed_yaml_files_name_the_file_and_entry(tmp_path, file, old, new, named):
    with pytest.raises(TerminologyError) as info:
        load_terminology(_copy_editing(tmp_path, file, old, new))
    assert file in str(info.value) and named in str(info.value)


def test_the_schema_is_part_of_the_content(term):
    assert (ROOT / "schemas" / "terminology.schema.json").read_bytes() in term.content
