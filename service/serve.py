"""Production entry point: validate the knowledge base, then serve under uvicorn's process supervisor.

Why a supervisor even for one worker: durable-rules is C; a crash (SIGSEGV) kills the worker process. uvicorn's
Multiprocess supervisor pings each worker and starts a new one when one dies or hangs, so the service never
stays silently dead. In-flight requests on the crashed worker fail (the client sees a dropped connection, not
an all-clear). `make run` and the Dockerfile both start the service this way.
"""
from __future__ import annotations

import logging
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from .knowledge.base import load_knowledge
from .knowledge.errors import KnowledgeError
from .settings import Settings

log = logging.getLogger("ldn.serve")


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        kb = load_knowledge(settings.rules_dir, settings.schemas_dir)   # fail fast, before any worker starts
    except KnowledgeError as exc:
        log.error("start-up stopped: %s", exc)
        return 2
    log.info("knowledge %s: %d active rules", kb.version, len(kb.active_rules))
    cds_open = settings.cds_issuers_file is None
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        log.warning("embedded default: listening on %s:%d without authentication (loopback only)%s",
                    settings.host, settings.port,
                    ", CDS Hooks included (/cds-services: no CDS_ISSUERS_FILE)" if cds_open else "")
    elif cds_open:
        log.warning("CDS Hooks (/cds-services) is open: no trusted JWT issuers configured (CDS_ISSUERS_FILE)")
    config = uvicorn.Config("service.main:app", host=settings.host, port=settings.port, workers=settings.workers,
                            log_level=settings.log_level.lower(), access_log=False, timeout_graceful_shutdown=10)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
