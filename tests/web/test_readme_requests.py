"""The README's curl commands work as written against `make run`'s service (open, on loopback): each is taken
from the README, run with bash and curl, only the port changed to the test's free port."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from service.knowledge.sources import fold_whitespace

from ..conftest import ROOT
from .live_service import free_port, running_service

README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = {m.group(1): m.group(0) for m in re.finditer(r"curl -s localhost:8000(/\S+) .*?\}'", README, re.S)}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    port = free_port()
    with running_service(tmp_path_factory.mktemp("readme-service"), port) as base:
        yield port, base


def _run(command: str, port: int) -> dict:
    assert shutil.which("curl"), "curl is needed to run the README's commands"
    proc = subprocess.run(["bash", "-c", command.replace("localhost:8000", f"localhost:{port}")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_readme_shows_both_requests():
    assert set(COMMANDS) == {"/v1/evaluations", "/cds-services/ldn-order-sign"}


def test_the_evaluation_request(service):
    port, _ = service
    answer = _run(COMMANDS["/v1/evaluations"], port)
    fired = {a["rule_id"]: a["severity"] for a in answer["advisories"]}
    assert fired["ldn-opioid-coadministration"] == "critical" and fired["ldn-perioperative-hold"] == "critical"
    assert "ldn-renal-impairment" in fired


def test_the_cds_hooks_request_gives_a_card_linking_the_pages(service, kb):
    port, _ = service
    card, gap = _run(COMMANDS["/cds-services/ldn-order-sign"], port)["cards"]
    assert card["indicator"] == "critical"
    assert gap["indicator"] == "info" and gap["summary"].startswith("Not fully checked")
    assert gap["summary"].endswith(": LDN dose, kidney function.")            # what could not be checked
    assert card["source"]["url"] == f"http://localhost:{port}/rules/ldn-opioid-coadministration"
    assert card["links"][0]["url"] == card["source"]["url"]
    for citation in kb.rules["ldn-opioid-coadministration"].citations:
        assert fold_whitespace(citation.quote) in fold_whitespace(card["detail"])
        assert f"http://localhost:{port}/sources/{citation.source_id}#q-" in card["detail"]
