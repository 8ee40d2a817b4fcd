"""Structured logs with a request id and no PHI; Prometheus metrics."""
from __future__ import annotations

import io
import json
import logging

import pytest

from service.web.telemetry import JsonFormatter

SECRETS = ("PAT-SECRET-123", "SECRETNAME", "SECRET-TIMING")


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_no_patient_data_in_logs(client, log_lines):
    body = {"patient": {"id": "PAT-SECRET-123"},
            "ldn": {"status": "active", "dose_mg": 4.5, "timing": "SECRET-TIMING"},
            "medications": [{"name": "Oxycodone SECRETNAME 5 mg", "status": "active"}]}
    assert client.post("/v1/evaluations", json=body).status_code == 200
    bad = dict(body, ldn={"status": "active", "dose_mg": -1, "timing": "SECRET-TIMING"})
    assert client.post("/v1/evaluations", json=bad).status_code == 422
    assert client.post("/v1/evaluations", content=b'{"patient": {"id": "PAT-SECRET-123"',
                       headers={"content-type": "application/json"}).status_code == 400
    lines = log_lines()
    access = [line for line in lines if line["logger"] == "ldn.access"]
    assert len(access) == 3 and {line["route"] for line in access} == {"/v1/evaluations"}
    assert all(line["request_id"] for line in access)
    text = json.dumps(lines)
    for secret in SECRETS:
        assert secret not in text


def test_request_id_is_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"}).headers["x-request-id"]
    assert made != "bad id with spaces\n" and len(made) == 32


def test_metrics_count_advisories_and_requests(client):
    client.post("/v1/evaluations", json={"ldn": {"status": "active", "dose_mg": 9}})
    text = client.get("/metrics").text
    assert 'ldn_advisories_total{rule_id="ldn-dose-above-range",severity="warning"}' in text
    assert 'ldn_not_evaluated_total{rule_id="ldn-opioid-coadministration"}' in text
    assert 'ldn_http_request_duration_seconds_count{method="POST",route="/v1/evaluations",status="200"}' in text


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_are_counted_per_channel(client):
    before = client.get("/metrics").text
    calls = {"evaluation": client.post("/v1/evaluations", json={"ldn": {"status": "active", "dose_mg": 4.5}}),
             "order-check": client.post("/v1/order-checks", json={"order": {"name": "LDN 4.5 mg"}}),
             "audit-read": client.get("/v1/evaluations/not-a-recorded-id"),
             "catalogue": client.get("/v1/rules"),
             "cds-hooks": client.get("/cds-services"),
             "cds-feedback": client.post("/cds-services/ldn-order-sign/feedback", json={})}
    after = client.get("/metrics").text
    for channel, response in calls.items():
        labels = {"channel": channel, "status": str(response.status_code)}
        assert _sample(after, "ldn_requests_total", **labels) - _sample(before, "ldn_requests_total", **labels) == 1
    assert _sample(after, "ldn_requests_total", channel="operations", status="200") >= 1


def test_build_info_names_the_version_and_the_knowledge(client, kb):
    text = client.get("/metrics").text
    assert _sample(text, "ldn_build_info", version="1.0.0", knowledge_version=kb.version) == 1


def test_channels_never_carry_an_id():
    from service.web.metrics import channel
    assert channel("/v1/evaluations/0f1e") == channel("/v1/order-checks/x") == "audit-read"
    assert channel("/cds-services/ldn-order-sign") == "cds-hooks"
    assert channel("/cds-services/anything/feedback") == "cds-feedback"
    assert channel("/v1/evaluations") == "evaluation" and channel("/v1/order-checks") == "order-check"
    assert channel("/no/such/path/p-123") == "other" and channel("/readyz") == "operations"


def test_a_client_that_leaves_mid_body_is_499_not_500(app, client, log_lines):
    """A client gone before its body arrived (a slow client cut, a closed tab) gets no answer; it is counted as
    nginx counts it (499), never as a server error."""
    import asyncio

    messages = [{"type": "http.request", "body": b'{"as_of"', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/evaluations", "raw_path": b"/v1/evaluations", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096"), (b"host", b"t")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    def counts() -> tuple[float, float]:
        text = client.get("/metrics").text
        return tuple(_sample(text, "ldn_requests_total", channel="evaluation", status=s) for s in ("499", "500"))
    before = counts()
    asyncio.run(app(scope, receive, send))
    assert sent == []
    assert counts() == (before[0] + 1, before[1])
    assert [line["status"] for line in log_lines() if line["msg"] == "request" and line["route"] != "/metrics"] \
        == [499]
