"""The contract for its readers: every operation described with an example, the examples real (each request is
sent and answered as documented, each response example matches its schema), tags and servers declared, and
Spectral's `spectral:oas` ruleset reports no error (Spectral from npm: `make spectral`, run by make test)."""
from __future__ import annotations

import json
import subprocess

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.web.openapi import CONTRACT, load_contract

from ..cds_hooks.support import make_client
from ..conftest import ROOT

SPECTRAL = ROOT / "tools" / "spectral" / "node_modules" / ".bin" / "spectral"
DOC = load_contract(CONTRACT)
OPERATIONS = [(method.upper(), path, op) for path, item in DOC["paths"].items() for method, op in item.items()]
IDS = [f"{m} {p}" for m, p, _ in OPERATIONS]


def _schema_validator(schema: dict) -> Draft202012Validator:
    registry = Registry().with_resource("urn:contract", Resource.from_contents(DOC, DRAFT202012))
    return Draft202012Validator({"$ref": "urn:contract#" + schema["$ref"][1:]} if "$ref" in schema else schema,
                                registry=registry)


@pytest.mark.parametrize("method,path,operation", OPERATIONS, ids=IDS)
def test_every_operation_is_described_tagged_and_has_an_example(method, path, operation):
    assert len(operation["description"]) > 40 and operation["summary"]
    assert set(operation["tags"]) <= {t["name"] for t in DOC["tags"]}
    body = operation.get("requestBody", {}).get("content", {})
    examples = [m["example"] for m in body.values() if "example" in m]
    examples += [p["example"] for p in operation.get("parameters", []) if "example" in p]
    examples += [m["example"] for m in operation["responses"]["200"].get("content", {}).values() if "example" in m]
    assert examples, f"{method} {path}: no example"
    if body:
        assert all("example" in m for m in body.values())
    assert all("example" in p for p in operation.get("parameters", [])), f"{method} {path}: a parameter without one"


@pytest.mark.parametrize("method,path,operation", OPERATIONS, ids=IDS)
def test_the_examples_are_real_requests_and_answers(evaluator, method, path, operation):
    client = make_client(evaluator)
    params = {p["name"]: p["example"] for p in operation.get("parameters", [])}
    url = path.format(**{p["name"]: params.pop(p["name"]) for p in operation.get("parameters", [])
                         if p["in"] == "path"})
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
    response = client.request(method, url, params={k: json.dumps(v) if isinstance(v, bool) else v
                                                   for k, v in params.items()}, json=body)
    assert str(response.status_code) in operation["responses"], (url, response.status_code, response.text[:300])
    audit_record = "{record_id}" in path          # an example id: no such record in a fresh store
    assert response.status_code == (404 if audit_record else 200), (url, response.text[:300])
    for media, content in operation["responses"]["200"].get("content", {}).items():
        if "example" in content and media == "application/json":
            errors = list(_schema_validator(content["schema"]).iter_errors(content["example"]))
            assert errors == [], (url, [e.message for e in errors])
            assert set(content["example"]) <= set(response.json())
        elif "example" in content:
            assert content["example"].splitlines()[0] in response.text


def test_servers_and_tags_are_declared():
    assert DOC["servers"][0]["url"] == "/" and all(s["description"] for s in DOC["servers"])
    assert all(t["description"] for t in DOC["tags"])


def test_spectral_oas_ruleset_reports_no_error():
    assert SPECTRAL.exists(), "Spectral is missing: `make spectral` installs it (make test does)"
    proc = subprocess.run([str(SPECTRAL), "lint", str(CONTRACT), "--ruleset", str(ROOT / ".spectral.yaml"),
                           "--format", "json", "--quiet", "--fail-severity", "error"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    results = json.loads(proc.stdout or "[]")
    errors = [f"{r['code']}: {r['message']} at {'.'.join(map(str, r['path']))}" for r in results
              if r["severity"] == 0]
    assert errors == [] and proc.returncode == 0, errors or proc.stderr
    warnings = [r["code"] for r in results]
    assert warnings == [], warnings                     # and no warning either, as of today
