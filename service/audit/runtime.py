"""The audit database as one worker uses it: one store (one engine), two bounded background writers (the audit
trail; CDS Hooks issued cards and feedback), and the patient-reference key.

`submit` and `submit_cds` never block the answer (items are queued and written in batches); a store that is
down or hung costs items, counted in ldn_audit_dropped_total / ldn_cds_store_dropped_total, never answers;
`healthy` and `cds_healthy` feed /readyz ("degraded"). Nothing here waits on the database in a request.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from ..knowledge.base import PROJECT_ROOT
from ..web.metrics import AUDIT_DROPS, AUDIT_WRITES, CDS_STORE_DROPS, CDS_STORE_WRITES
from ..settings import Settings
from . import migrate
from .feedback import FeedbackStore, FeedbackWrite, IssuedCards
from .record import AuditRecord, patient_ref_hash
from .store import AuditStore
from .writer import AuditWriter

log = logging.getLogger("ldn.audit")
DEV_KEY_FILE = PROJECT_ROOT / "var" / "audit-hmac.key"


def hmac_key(settings: Settings, dev_key_file: Path = DEV_KEY_FILE) -> bytes:
    """The configured secret; in development a random key kept in var/ (so hashes stay linkable across
    restarts and workers). Production refuses to start without a configured one (service.serve)."""
    if settings.audit_hmac_secret is not None:
        return settings.audit_hmac_secret.get_secret_value().encode("utf-8")
    try:
        dev_key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dev_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return dev_key_file.read_bytes()
    except OSError:   # a read-only install (container): hashes stay linkable only while this process runs
        log.warning("no AUDIT_HMAC_SECRET and var/ is not writable: using a per-process key")
        return secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return dev_key_file.read_bytes()


class Auditor:
    def __init__(self, settings: Settings):
        self._key = hmac_key(settings)
        try:
            migrate.upgrade(settings.database_url)   # idempotent and serialised between processes
        except Exception as exc:   # the store is down: answers still flow, records are counted as dropped
            log.error("audit store unavailable at start-up", extra={"fields": {"error": type(exc).__name__}})
        self.store = AuditStore.from_settings(settings)
        self.writer = AuditWriter.from_settings(
            self.store, settings,
            on_write=lambda n: AUDIT_WRITES.inc(n),
            on_drop=lambda n, reason: (AUDIT_DROPS.labels(reason).inc(n),
                                       log.warning("audit records dropped", extra={"fields": {
                                           "count": n, "reason": reason}})))
        self.feedback = FeedbackStore(self.store.engine)     # the same engine: one database stack
        self.cds_writer = AuditWriter.from_settings(
            self.feedback, settings, name="cds-store-writer",
            on_write=lambda n: CDS_STORE_WRITES.inc(n),
            on_drop=lambda n, reason: (CDS_STORE_DROPS.labels(reason).inc(n),
                                       log.warning("cds issued cards or feedback dropped", extra={"fields": {
                                           "count": n, "reason": reason}})))
        self._shutdown_timeout = settings.audit_shutdown_timeout_s

    def patient_hash(self, patient_id: str | None) -> str | None:
        return patient_ref_hash(self._key, patient_id)

    def submit(self, record: AuditRecord) -> None:
        self.writer.submit(record)

    def get(self, record_id: str) -> AuditRecord | None:
        self.writer.flush(timeout=2.0)   # this worker's own recent records first
        return self.store.get(record_id)

    def submit_cds(self, item: IssuedCards | FeedbackWrite) -> bool:
        """Queue issued cards or feedback; False (counted as a drop) when the queue is full or closed."""
        return self.cds_writer.submit(item)      # type: ignore[arg-type]

    @property
    def healthy(self) -> bool:
        return self.writer.healthy

    @property
    def cds_healthy(self) -> bool:
        return self.cds_writer.healthy

    def dropped(self) -> dict[str, int]:
        """What this process lost so far (/readyz)."""
        return {"audit": self.writer.dropped, "cds_store": self.cds_writer.dropped}

    def close(self) -> None:
        self.writer.close(timeout=self._shutdown_timeout)
        self.cds_writer.close(timeout=self._shutdown_timeout)
        self.store.close()
