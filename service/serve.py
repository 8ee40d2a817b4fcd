"""Production entry point: validate the knowledge base and run its rules' own cases, then serve under uvicorn's
process supervisor.

Why a supervisor even for one worker: durable-rules is C; a crash (SIGSEGV) kills the worker process. uvicorn's
Multiprocess supervisor pings each worker and starts a new one when one dies or hangs, so the service never
stays silently dead. In-flight requests on the crashed worker fail (the client sees a dropped connection, not
an all-clear). `make run` and the Dockerfile both start the service this way.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import sys
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from .authoring import casetest
from .core.decision import Evaluator
from .knowledge.base import load_knowledge
from .knowledge.errors import KnowledgeError
from .audit import migrate
from .settings import OPEN_NETWORK_CONSENT, Settings
from .web.telemetry import configure_logging

log = logging.getLogger("ldn.serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_parts(settings: Settings) -> list[str]:
    """The endpoints these settings leave without authentication."""
    return [name for name, is_open in (("/v1/*", not (settings.api_keys_file or settings.auth_issuers_file)),
                                       ("/cds-services", settings.cds_issuers_file is None)) if is_open]


def refusals(settings: Settings) -> list[str]:
    """Why the service must not start with these settings (empty: it may). Open mode (no authentication) is for
    loopback only, unless a closed test network is declared with LDN_ALLOW_OPEN_NETWORK; production needs more."""
    problems = []
    unauthenticated = open_parts(settings)
    if unauthenticated and not is_loopback(settings.host) \
            and settings.ldn_allow_open_network != OPEN_NETWORK_CONSENT:
        problems.append(f"no authentication on {' and '.join(unauthenticated)} while listening on "
                        f"{settings.host}, beyond loopback (configure API_KEYS_FILE or AUTH_ISSUERS_FILE and "
                        f"CDS_ISSUERS_FILE; or HOST=127.0.0.1; or, on a closed test network only, "
                        f"LDN_ALLOW_OPEN_NETWORK={OPEN_NETWORK_CONSENT})")
    if settings.ldn_env != "production":
        return problems
    if not (settings.api_keys_file or settings.auth_issuers_file):
        problems.append("no authentication for /v1/* (set API_KEYS_FILE or AUTH_ISSUERS_FILE)")
    if settings.cds_issuers_file is None:
        problems.append("no trusted issuers for CDS Hooks (set CDS_ISSUERS_FILE)")
    if not settings.forwarded_allow_ips:
        problems.append("no TLS-terminating proxy configured (set FORWARDED_ALLOW_IPS)")
    if not settings.public_base_url:
        problems.append("no external base URL: the CDS Hooks JWT aud check would trust the Host header "
                        "(set PUBLIC_BASE_URL)")
    if settings.audit_hmac_secret is None or len(settings.audit_hmac_secret.get_secret_value()) < 32:
        problems.append("no audit HMAC secret of at least 32 characters (set AUDIT_HMAC_SECRET)")
    return problems


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    proxy = {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips} \
        if settings.forwarded_allow_ips else {"proxy_headers": False}
    # uvloop and httptools (dependencies; bench/README.md says what they buy), named rather than "auto" so that a
    # missing one stops start-up instead of silently slowing it.
    return uvicorn.Config("service.main:app", host=settings.host, port=settings.port, workers=settings.workers,
                          log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=10,
                          log_config=None, loop="uvloop", http="httptools", **proxy)


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    try:
        kb = load_knowledge(settings.rules_dir, settings.schemas_dir)   # fail fast, before any worker starts
    except KnowledgeError as exc:
        log.error("start-up stopped: %s", exc)
        return 2
    failed = [r for r in casetest.run_cases(Evaluator(kb)) if not r.passed]
    for result in failed:          # the rule's own cases: a threshold that breaks one never starts serving
        log.error("start-up stopped: rule %s case [%d] %r failed: %s", result.rule_id, result.index, result.name,
                  "; ".join(result.problems))
    if failed:
        return 2
    refused = refusals(settings)
    if refused:
        log.error("start-up stopped (LDN_ENV=%s): %s", settings.ldn_env, "; ".join(refused))
        return 2
    log.info("knowledge %s: %d active rules", kb.version, len(kb.active_rules))
    unauthenticated = open_parts(settings)
    if unauthenticated:
        log.warning("NO AUTHENTICATION on %s; listening on %s:%d%s", " and ".join(unauthenticated),
                    settings.host, settings.port, " (loopback only)" if is_loopback(settings.host)
                    else " (LDN_ALLOW_OPEN_NETWORK: anyone on this network can call it)")
    try:
        migrate.upgrade(settings.database_url)    # before the workers, so they never race on a fresh store
    except Exception as exc:
        log.error("audit store unavailable at start-up (answers will flow, records are counted as dropped): %s",
                  type(exc).__name__)
    # Each worker keeps its own counters; this folder lets /metrics add them up across workers.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ldn-metrics-"))
    config = uvicorn_config(settings)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
