"""The pages people read (service/web/pages.py): public with authentication on, valid HTML, accessible structure,
every quoted passage highlighted and anchored, links absolute on PUBLIC_BASE_URL; the API docs offline."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import html5lib
import pytest
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.web.auth import hash_key
from service.knowledge.sources import fold_whitespace
from service.settings import Settings
from service.web.urls import quote_anchor

from ..cds_hooks.support import hook_request, ldn_draft, make_client, oxycodone, post_hook

PUBLIC = "https://cds.hospital.example"
NS = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory, evaluator) -> TestClient:
    """Authentication on for /v1 (an API key file) and behind a proxy (PUBLIC_BASE_URL)."""
    d = tmp_path_factory.mktemp("pages")
    (d / "keys.yaml").write_text(yaml.safe_dump({"keys": [
        {"id": "pharmacy", "sha256": hash_key("ldn_pages-key"), "scopes": ["evaluate"]}]}))
    return TestClient(create_app(Settings(api_keys_file=d / "keys.yaml", public_base_url=PUBLIC + "/"),
                                 evaluator=evaluator))


def every_page(kb) -> list[str]:
    return (["/rules", "/sources"] + [f"/rules/{r}" for r in kb.rules] + [f"/sources/{s}" for s in kb.sources])


def parse(html: str) -> ET.Element:
    """html5lib in strict mode: any parse error (invalid HTML) raises."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(html)


def text(e: ET.Element) -> str:
    return " ".join("".join(e.itertext()).split())


def texts(root: ET.Element, tag: str) -> list[str]:
    return [text(e) for e in root.iter(NS + tag)]


def definitions(root: ET.Element) -> dict[str, str]:
    """Every <dt> term with the <dd> that follows it."""
    out = {}
    for dl in root.iter(NS + "dl"):
        children = list(dl)
        out.update({text(dt): text(dd) for dt, dd in zip(children, children[1:]) if dt.tag == NS + "dt"})
    return out


def marked(e: ET.Element, inside: bool = False) -> list[tuple[str, bool]]:
    """The text under e in order, each piece with whether it is inside a <mark>."""
    here = inside or e.tag == NS + "mark"
    out = [(e.text, here)] if e.text else []
    for child in e:
        out += marked(child, here)
        if child.tail:
            out.append((child.tail, here))
    return out


def test_every_page_is_public_valid_html_with_landmarks_and_ordered_headings(secured, kb):
    assert secured.get("/v1/rules").status_code == 401                    # the JSON catalogue stays behind auth
    for path in every_page(kb) + ["/rules/no-such-rule", "/sources/no-such-source"]:
        response = secured.get(path)
        assert response.status_code == (404 if "no-such" in path else 200), path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self';")
        root = parse(response.text)
        assert root.get("lang") == "en", path
        for landmark in ("header", "nav", "main", "footer"):
            assert len(list(root.iter(NS + landmark))) == 1, (path, landmark)
        levels = [int(e.tag[-1]) for e in root.iter() if re.fullmatch(NS + "h[1-6]", str(e.tag))]
        assert levels[0] == 1 and levels.count(1) == 1, path
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), (path, levels)   # no skipped level
        assert len(texts(root, "title")) == 1 and texts(root, "title")[0]
        stylesheets = [e.get("href") for e in root.iter(NS + "link")]
        assert stylesheets == [f"{PUBLIC}/static/pages/pages.css"], path          # nothing from another origin
        assert not list(root.iter(NS + "script")) and not list(root.iter(NS + "img")), path
        for a in root.iter(NS + "a"):
            href = a.get("href")
            assert href.startswith(PUBLIC + "/") or href.startswith("#"), (path, href)  # absolute, on the base
    assert secured.get("/static/pages/pages.css").headers["content-type"].startswith("text/css")


def test_the_catalogue_lists_every_rule_with_severity_status_version(secured, kb):
    root = parse(secured.get("/rules").text)
    rows = [r for r in root.iter(NS + "tr") if r.find(f"{NS}th/{NS}a") is not None]
    assert len(rows) == len(kb.rules)
    for row, rule in zip(rows, kb.rules.values()):
        cells = [text(c) for c in row]
        assert text(row.find(f"{NS}th/{NS}a")) == rule.title and text(row.find(f"{NS}th/{NS}code")) == rule.id
        assert row.find(f"{NS}th/{NS}a").get("href") == f"{PUBLIC}/rules/{rule.id}"
        assert rule.description.startswith(cells[1]) and cells[1]
        assert cells[2].startswith(rule.severity) and cells[3:] == [rule.status, rule.version]
    perioperative = next(r for r in rows if "ldn-perioperative-hold" in "".join(r.itertext()))
    assert "warning up to critical" in " ".join("".join(perioperative.itertext()).split())


def test_a_rule_page_shows_what_a_reviewer_needs(secured, kb):
    rule = kb.rules["ldn-perioperative-hold"]
    root = parse(secured.get(f"/rules/{rule.id}").text)
    page = " ".join("".join(root.itertext()).split())
    assert texts(root, "h1") == [rule.title]
    assert texts(root, "h2") == ["What it checks", "When it gives advice", "Parameters", "The advice it gives",
                                 "What the sources say", "Source attributes (ONC HTI-1)", "Its test cases",
                                 "Version history"]
    assert rule.description in page
    # the condition as the engine runs it, parameters filled in with their unit, and the escalation
    assert "procedures.periop_days_until ≤ 30 d (lookahead_days)" in page
    assert "To critical when, in addition, procedures.periop_days_until ≤ 2 d (hold_days_min)" in page
    rows = {r[0]: r[1:] for r in (texts(tr, "td") and [texts(tr, "th")[0], *texts(tr, "td")]
                                  for tr in root.iter(NS + "tr")) if r}
    assert rows["hold_days_max"] == ["3", "d", rule.parameters["hold_days_max"]["description"]]
    # the advice with its parameters as the card shows them, the patient's values as variables
    assert "Hold LDN from periop_procedure.date − 3 days before elective procedure on periop_procedure.date." in page
    assert "periop_procedure.date" in texts(root, "var")
    # each quote, linked to its anchor on the source page
    quotes = {" ".join("".join(b.itertext()).split()): b.get("cite") for b in root.iter(NS + "blockquote")}
    assert quotes == {c.quote: f"{PUBLIC}/sources/{c.source_id}#{quote_anchor(c.quote)}" for c in rule.citations}
    # HTI-1 source attributes
    hti = definitions(root)
    assert (hti["Developer"], hti["Funding source"], hti["Intended use"]) == (
        kb.meta["developer"], kb.meta["funding_source"], " ".join(kb.meta["intended_use"].split()))
    assert (hti["Release date"], hti["Revision date"]) == (rule.released, rule.revised)
    assert kb.inputs["procedures"]["data_element"] + " (procedures, required)" in hti["Patient data elements used"]
    assert kb.sources["ldn-clinical-summary"].title in hti["Bibliographic citations"]
    # its own test cases, every one, and the version history
    for case in rule.tests:
        assert case["name"] in rows
    assert rows["procedure tomorrow, opioids not known - critical"][1:] == ["gives the advice", "critical"]
    assert "opioids_expected unknown" in rows["procedure tomorrow, opioids not known - critical"][0]
    assert rows["procedures unknown"][1] == "reports it as not evaluated"
    assert [rows[h["version"]][1] for h in rule.history] == [h["change"] for h in rule.history]
    assert rows["1.1.0"][0] == "2026-11-22"


def test_a_source_page_highlights_and_anchors_every_cited_passage(secured, kb):
    for source in kb.sources.values():
        root = parse(secured.get(f"/sources/{source.id}").text)
        citing = {r.id for r in kb.rules.values() if any(c.source_id == source.id for c in r.citations)}
        listed = {a.get("href").rsplit("/", 1)[-1] for li in root.iter(NS + "li") for a in li.iter(NS + "a")
                  if "/rules/" in a.get("href", "")}
        assert listed == citing, source.id
        (document,) = [d for d in root.iter(NS + "div") if d.get("class") == "document"]
        assert "".join(document.itertext()) == source.text                # the whole text, unchanged
        by_id = {m.get("id"): m for m in document.iter(NS + "mark") if m.get("id")}
        mask = "".join(("1" if inside else "0") * len(piece) for piece, inside in marked(document))
        quotes = {c.quote for r in kb.rules.values() for c in r.citations if c.source_id == source.id}
        assert set(by_id) == {quote_anchor(q) for q in quotes}, source.id
        for quote in quotes:
            first = by_id[quote_anchor(quote)]                              # the passage starts at its anchor
            assert fold_whitespace(quote).startswith(fold_whitespace("".join(first.itertext()))), quote
            span = re.search(r"\s+".join(map(re.escape, quote.split())), source.text).span()
            assert set(mask[slice(*span)]) == {"1"}, quote                 # and all of it is marked
        assert "0" in mask, source.id                                      # not the whole document


def test_unknown_ids_are_an_html_404_naming_what_was_asked(secured):
    response = secured.get("/rules/ldn-nope")
    assert response.status_code == 404
    assert "There is no rule with the id ldn-nope." in " ".join("".join(parse(response.text).itertext()).split())


def test_without_public_base_url_links_use_the_request_base(client, kb):
    root = parse(client.get("/rules").text)
    assert {a.get("href") for a in root.iter(NS + "a")} >= {f"http://testserver/rules/{r}" for r in kb.rules}


def test_every_channel_links_the_pages_on_the_public_base(evaluator, kb):
    """CDS card source.url, links and quote links; order-check DetectedIssue.reference: one URL builder."""
    cds = make_client(evaluator, Settings(public_base_url=PUBLIC))
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch={"medicationRequests": {
        "resourceType": "Bundle", "entry": [{"resource": oxycodone()}]}})
    (card,) = [c for c in post_hook(cds, "ldn-order-sign", body).json()["cards"]
               if c["source"]["topic"]["code"] == "ldn-opioid-coadministration"]
    page = f"{PUBLIC}/rules/ldn-opioid-coadministration"
    assert card["source"]["url"] == page and card["links"] == [
        {"label": "The rule and its sources", "url": page, "type": "absolute"}]
    linked = re.findall(r"\]\((\S+)\)", card["detail"])
    assert linked == [f"{PUBLIC}/sources/{c.source_id}#{quote_anchor(c.quote)}"
                      for c in kb.rules["ldn-opioid-coadministration"].citations]
    order = {"order": {"name": "Percocet 5/325", "kind": "new"},
             "profile": {"medications": [{"name": "LDN 4.5 mg capsule", "status": "active"}]}}
    fhir = cds.post("/v1/order-checks?format=fhir", json=order).json()
    references = [e["resource"]["reference"] for e in fhir["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert references and all(r.startswith(f"{PUBLIC}/rules/ldn-") for r in references)
    for r in references:
        assert cds.get(r.removeprefix(PUBLIC)).status_code == 200


@pytest.mark.parametrize("env,docs", [
    ({}, True), ({"api_docs": False}, False),
    ({"ldn_env": "production"}, False), ({"ldn_env": "production", "api_docs": True}, True)])
def test_api_docs_served_offline_and_off_by_default_in_production(evaluator, env, docs):
    settings = Settings(**env)
    assert settings.docs_enabled is docs
    client = TestClient(create_app(settings, evaluator=evaluator))
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == (200 if docs else 404), (path, env)
        if docs:   # every asset from this service: no CDN, no web font
            assets = re.findall(r"""(?:src|href)=["']([^"']+)""", response.text)
            assert assets and all(a.startswith("/static/api-docs/") for a in assets), assets
            for asset in assets:
                assert client.get(asset).status_code == 200
    nav = texts(parse(client.get("/rules").text), "nav")[0]
    assert ("API documentation" in nav) is docs


def test_a_bumped_version_without_its_history_entry_is_said_so(tmp_path):
    import shutil

    from service.core.decision import Evaluator
    from service.knowledge.base import load_knowledge

    from ..conftest import ROOT
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    path = rules / "ldn" / "ldn-dose-below-range.yaml"
    path.write_text(path.read_text().replace("version: 1.0.0\ntitle", "version: 1.1.0\ntitle", 1))
    kb = load_knowledge(rules, check_lock=False)          # a rule author's trial run: not locked yet
    client = TestClient(create_app(Settings(rules_dir=rules), evaluator=Evaluator(kb)))
    page = text(parse(client.get("/rules/ldn-dose-below-range").text))
    assert "Version 1.1.0 (revised 2026-11-22) has no history entry yet." in page
    assert "has no history entry yet" not in text(parse(client.get("/rules/ldn-dose-above-range").text))
