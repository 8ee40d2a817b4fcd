"""A clinician follows a card's links in a real browser: headless Chromium (Debian's package, .ci/chromium.sh)
driven by Playwright, against a real service (python -m service.serve) with authentication on (API keys for /v1,
a trusted CDS Hooks issuer). One browser launch for the module; every request the pages make is logged and any
that would leave the service's origin is blocked and fails the test. Screenshots go to var/screenshots/.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import html5lib
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, Page, sync_playwright

from service.web.auth import hash_key
from service.web.urls import quote_anchor

from ..cds_hooks.support import appointment, bundle, hook_request, ldn_draft, oxycodone, record
from ..cds_hooks.validator import validate_response
from ..conftest import ROOT
from .live_service import free_port, running_service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "var" / "screenshots"
ISS = "https://ehr.hospital.example"
API_KEY = "ldn_browser-test-key"
MARK_BACKGROUND = "rgb(255, 228, 92)"          # --mark in service/web/static/pages.css
MAX_PAGES = 60                                  # the crawl's bound: 11 rules, 4 sources, 2 lists and the docs


@pytest.fixture(scope="module")
def signing_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def service(tmp_path_factory, signing_key):
    """The real service with authentication on, its public base URL its own loopback address."""
    d = tmp_path_factory.mktemp("browser-service")
    (d / "keys.yaml").write_text(yaml.safe_dump({"keys": [
        {"id": "browser-test", "sha256": hash_key(API_KEY), "scopes": ["evaluate"]}]}))
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="ehr-1", alg="ES384", use="sig")
    (d / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    (d / "cds-issuers.yaml").write_text(yaml.safe_dump({"issuers": {ISS: {"jwks_file": "jwks.json"}}}))
    port = free_port()
    with running_service(d, port, API_KEYS_FILE=str(d / "keys.yaml"), CDS_ISSUERS_FILE=str(d / "cds-issuers.yaml"),
                         PUBLIC_BASE_URL=f"http://127.0.0.1:{port}") as base:
        yield base


class Traffic:
    """Every request the browser's pages make; those to another origin are aborted and kept in `blocked`."""

    def __init__(self, origin: str):
        self.origin = origin
        self.seen: list[str] = []
        self.blocked: list[str] = []

    def route(self, route, request) -> None:
        self.seen.append(request.url)
        parts = urlsplit(request.url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.blocked.append(request.url)
            route.abort()


@pytest.fixture(scope="module")
def browser(service, tmp_path_factory):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `bash .ci/chromium.sh` installs it (make test does)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    traffic = Traffic(service)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        context.route("**/*", traffic.route)
        try:
            yield context, traffic
        finally:
            context.close()


def _post(url: str, body: dict, headers: dict) -> tuple[int, dict | None]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        err.close()
        return err.code, None


@pytest.fixture(scope="module")
def cards(service, signing_key) -> list[dict]:
    """A real CDS Hooks order-sign call: an LDN order for a patient on oxycodone with knee surgery in 2 days."""
    url = f"{service}/cds-services/ldn-order-sign"
    now = int(time.time())
    token = jwt.encode({"iss": ISS, "aud": url, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())},
                       signing_key, algorithm="ES384", headers={"kid": "ehr-1"})
    surgery = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=2)).isoformat()
    body = hook_request("order-sign", drafts=[ldn_draft()], prefetch=record(
        medicationRequests=bundle(oxycodone()), appointments=bundle(appointment("knee", f"{surgery}T08:00:00Z"))))
    assert _post(url, body, {})[0] == 401                                  # authentication is on
    status, answer = _post(url, body, {"Authorization": f"Bearer {token}"})
    assert status == 200 and validate_response(answer, ours=True) == []
    return answer["cards"]


def _open(page: Page, url: str, shot: str | None = None) -> None:
    if urldefrag(url).fragment:
        page.goto("about:blank")          # a load, not a same-document jump from the previous passage
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    if shot:
        page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)


def test_v1_needs_credentials_and_the_pages_do_not(service):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{service}/v1/rules", timeout=10)
    assert refused.value.code == 401
    refused.value.close()
    with urllib.request.urlopen(urllib.request.Request(f"{service}/v1/rules", headers={"X-API-Key": API_KEY})) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{service}/rules", timeout=10) as r:
        assert r.status == 200 and r.headers["content-type"].startswith("text/html")


def test_a_card_leads_to_its_rule_and_the_quoted_passages_highlighted(browser, cards, kb):
    context, traffic = browser
    page = context.new_page()
    by_rule = {c["source"]["topic"]["code"]: c for c in cards}
    assert {"ldn-opioid-coadministration", "ldn-perioperative-hold"} <= set(by_rule)
    for rule_id in ("ldn-opioid-coadministration", "ldn-perioperative-hold"):
        card, rule = by_rule[rule_id], kb.rules[rule_id]
        for url in [card["source"]["url"]] + [link["url"] for link in card["links"]]:
            _open(page, url, shot=f"rule-{rule_id}")
            assert page.get_by_role("heading", level=1).inner_text() == rule.title
            assert page.get_by_role("heading", name="Source attributes (ONC HTI-1)").is_visible()
        quote_links = re.findall(r"\]\((\S+)\)", card["detail"])
        assert len(quote_links) == len(rule.citations)
        for url, citation in zip(quote_links, rule.citations):
            anchor = quote_anchor(citation.quote)
            assert urldefrag(url).fragment == anchor
            _open(page, url)
            target = page.locator(":target")                               # the browser went to the passage
            assert target.get_attribute("id") == anchor
            assert target.evaluate("e => e.tagName") == "MARK"
            assert target.evaluate("e => getComputedStyle(e).backgroundColor") == MARK_BACKGROUND
            assert target.is_visible() and target.bounding_box()["y"] < page.viewport_size["height"]
            assert " ".join(citation.quote.split()).startswith(" ".join(target.inner_text().split()))
            assert page.get_by_role("heading", level=1).inner_text() == kb.sources[citation.source_id].title
            page.screenshot(path=str(SHOTS / f"source-{citation.source_id}-{anchor}.png"))
    assert traffic.blocked == []
    page.close()


_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                               if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 7) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def _links(page: Page) -> list[str]:
    return page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")


def test_every_link_on_the_pages_answers_200_valid_html_readable(browser, service):
    """From the catalogue, every page reachable through the pages' own links: 200, valid HTML (html5lib
    strict), text contrast at least 7:1 (WCAG AAA), every in-page anchor present, printable without the nav."""
    context, traffic = browser
    page = context.new_page()
    queue, visited = deque([f"{service}/rules"]), set()
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        if url in visited:
            continue
        visited.add(url)
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        html5lib.HTMLParser(strict=True).parse(response.text())
        if urlsplit(url).path in ("/docs", "/redoc"):                       # not ours to crawl: checked below
            continue
        assert page.evaluate(_CONTRAST) == [], url
        for link in _links(page):
            target, fragment = urldefrag(link)
            assert target.startswith(service + "/"), (url, link)           # nothing points elsewhere
            if fragment and target == url:
                assert page.locator(f"[id='{fragment}']").count() == 1, (url, fragment)
            queue.append(target)
        name = urlsplit(url).path.strip("/").replace("/", "-")
        page.screenshot(path=str(SHOTS / f"page-{name}.png"), full_page=True)
    assert not queue or len(visited) < MAX_PAGES, "the crawl hit its bound"
    paths = {urlsplit(u).path for u in visited}
    assert {"/rules", "/sources", "/docs", "/rules/ldn-renal-impairment", "/sources/ldn-vardeman-2023"} <= paths
    page.emulate_media(media="print")
    page.goto(f"{service}/rules/ldn-perioperative-hold")
    assert page.locator("nav").evaluate("e => getComputedStyle(e).display") == "none"
    page.pdf(path=str(SHOTS / "rule-ldn-perioperative-hold.pdf"))
    assert traffic.blocked == []
    page.close()


def test_api_docs_render_offline(browser, service):
    context, traffic = browser
    page = context.new_page()
    _open(page, f"{service}/docs")
    page.locator(".swagger-ui .info .title").filter(has_text="LDN decision support").wait_for()
    assert page.locator(".swagger-ui .opblock").count() >= 10              # the operations, rendered
    page.screenshot(path=str(SHOTS / "api-docs-swagger.png"))
    _open(page, f"{service}/redoc")
    page.get_by_role("heading", name=re.compile("LDN decision support")).first.wait_for()
    page.screenshot(path=str(SHOTS / "api-docs-redoc.png"))
    assert traffic.blocked == []
    assert {urlsplit(u).path for u in traffic.seen} >= {"/openapi.json", "/static/api-docs/swagger-ui-bundle.js",
                                                        "/static/api-docs/redoc.standalone.js"}
    page.close()
