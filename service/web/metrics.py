"""Prometheus metrics. With several workers, set PROMETHEUS_MULTIPROC_DIR (service.serve does) so /metrics
aggregates every worker's figures."""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from ..core.decision import Decision

REQUEST_SECONDS = Histogram(
    "ldn_http_request_duration_seconds", "HTTP request latency by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
REQUESTS = Counter("ldn_requests_total", "HTTP requests by channel (evaluation, order-check, cds-hooks, "
                   "cds-feedback, audit-read, catalogue, operations, other) and status.", ["channel", "status"])
# 1 per worker, labelled with what it runs ("max" across workers: every worker of a process runs the same).
BUILD_INFO = Gauge("ldn_build_info", "The service version and the knowledge version it serves.",
                   ["version", "knowledge_version"], multiprocess_mode="max")
ADVISORIES = Counter("ldn_advisories_total", "Advisories returned, by rule and severity.", ["rule_id", "severity"])
NOT_EVALUATED = Counter("ldn_not_evaluated_total", "Rules reported as not evaluated, by rule.", ["rule_id"])
AUDIT_WRITES = Counter("ldn_audit_writes_total", "Audit records written to the store.")
AUDIT_DROPS = Counter("ldn_audit_dropped_total", "Audit records lost (store down or queue full), by reason.",
                      ["reason"])
CDS_STORE_WRITES = Counter("ldn_cds_store_writes_total", "CDS Hooks issued-card and feedback writes committed.")
CDS_STORE_DROPS = Counter("ldn_cds_store_dropped_total", "CDS Hooks issued-card and feedback writes lost (store "
                                                         "down or queue full), by reason.", ["reason"])


def channel(path: str) -> str:
    """The channel a request path belongs to (a closed set: the label never carries an id)."""
    if path.startswith("/cds-services"):
        return "cds-feedback" if path.endswith("/feedback") else "cds-hooks"
    if path in ("/v1/evaluations", "/v1/order-checks"):
        return path[4:-1]                                  # evaluation, order-check
    if path.startswith(("/v1/evaluations/", "/v1/order-checks/", "/v1/cds-hooks/feedback-summary")):
        return "audit-read"
    if path.startswith(("/v1/rules", "/v1/sources")):
        return "catalogue"
    if path in ("/healthz", "/readyz", "/metrics"):
        return "operations"
    return "other"


def count_decision(decision: Decision) -> None:
    for a in decision.advisories:
        ADVISORIES.labels(a.rule_id, a.severity).inc()
    for n in decision.not_evaluated:
        NOT_EVALUATED.labels(n.rule_id).inc()


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
