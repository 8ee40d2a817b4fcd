"""deploy/compose.yaml against the Compose Specification's own JSON Schema (vendored: compose-spec.SOURCE.md),
plus what it must hold: PostgreSQL, 2+ hardened replicas trusting only the proxy, nginx rendering the one
template under deploy/nginx with TLS placeholders. (Docker is not on this machine: the proof runs the same nginx
template in front of two service processes: tests/test_proof_scaleout.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from service.settings import Settings

from ..conftest import ROOT

DEPLOY = ROOT / "deploy"
SCHEMA = Path(__file__).with_name("compose-spec.json")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_is_valid_by_the_spec_schema():
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert [e.message for e in validator.iter_errors(_compose())] == []
    broken = _compose()
    broken["services"]["ldn-cds"]["stop_grace_periodd"] = "45s"                 # the schema does catch typos
    assert list(validator.iter_errors(broken))


def test_replicas_postgres_and_the_proxy():
    services = _compose()["services"]
    app, nginx = services["ldn-cds"], services["nginx"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert app["deploy"]["replicas"] >= 2
    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    proxy_ip = nginx["networks"]["backend"]["ipv4_address"]
    assert app["environment"]["FORWARDED_ALLOW_IPS"] == proxy_ip               # only the proxy is trusted
    assert set(app["environment"]) <= {name.upper() for name in Settings.model_fields}
    assert app["read_only"] is True and app["cap_drop"] == ["ALL"] and app["user"] == "10001:10001"
    assert app["tmpfs"] == ["/tmp"] and "no-new-privileges:true" in app["security_opt"]
    drain, flush = float(app["environment"]["SHUTDOWN_DRAIN_S"]), float(app["environment"]["AUDIT_SHUTDOWN_TIMEOUT_S"])
    assert float(app["stop_grace_period"].rstrip("s")) > drain + 10 + flush
    assert "ports" not in app                                                   # reachable through nginx only


def test_nginx_renders_the_one_template_with_tls():
    nginx = _compose()["services"]["nginx"]
    assert "./nginx/templates:/etc/nginx/templates:ro" in nginx["volumes"]
    env = nginx["environment"]
    assert env["LDN_LISTEN"] == "443 ssl" and "ssl_certificate /etc/nginx/tls/tls.crt;" in env["LDN_TLS"]
    template = (DEPLOY / "nginx" / "templates" / "ldn-cds.conf.template").read_text()
    for name in ("LDN_UPSTREAM_SERVERS", "LDN_LISTEN", "LDN_TLS"):
        assert "${" + name + "}" in template and name in env
    for directive in ("client_header_timeout", "client_body_timeout", "proxy_request_buffering on",
                      "proxy_next_upstream error timeout"):
        assert directive in template


def test_secret_files_are_placeholders():
    assert yaml.safe_load((DEPLOY / "secrets" / "api-keys.yaml").read_text()) == {"keys": None}
    issuers = yaml.safe_load((DEPLOY / "secrets" / "cds" / "cds-issuers.yaml").read_text())["issuers"]
    assert all(".example." in iss for iss in issuers)
    assert not list((DEPLOY / "secrets").rglob("*.key")) and not list((DEPLOY / "secrets").rglob("*.crt"))
