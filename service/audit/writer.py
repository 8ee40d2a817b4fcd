"""Buffered, batched audit writes (like OPA's decision logs): the answer never waits for the database.

    writer = AuditWriter(store, on_drop=lambda n, reason: AUDIT_DROPS.labels(reason).inc(n),
                         on_write=AUDIT_WRITES.inc)
    writer.submit(record)        # never blocks: appends to a bounded in-memory queue, or drops and counts
    writer.healthy               # False while the last write failed (/readyz: degraded)
    writer.close(timeout=10)     # graceful shutdown: flushes everything still queued

One background thread drains the queue: it writes a batch when `batch_size` records are waiting or the oldest
one has waited `flush_interval_s`. A batch that fails because the store is unreachable, locked or failing is
retried `retries` times with exponential backoff, then dropped; a batch the database refuses for its data (a
constraint, a value it cannot store) is written record by record so that one bad record does not take its
batch with it. `healthy` turns False on a failure of the store (not on a refused record) and True again with
the next successful write. Every record that cannot be written is counted through on_drop(n, reason):

    queue_full   the queue held max_queue records (the store is slow or down)
    store_error  the store failed on every attempt
    rejected     the store answers but refused this record
    closed       submitted after close()
    shutdown     still queued when close(timeout) gave up

A kill -9 of the process loses what was still queued (normally under flush_interval_s of traffic); what was
committed stays intact. Records are never logged (nor are exception messages that could carry values; the
store hides parameters).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Protocol, Sequence

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from .record import AuditRecord

log = logging.getLogger("ldn.audit.writer")

OnDrop = Callable[[int, str], Any]
OnWrite = Callable[[int], Any]


def refused_by_store(exc: BaseException) -> bool:
    """True when the database answered but refused the data (a constraint, a value it cannot take, a value
    that cannot be bound): retrying cannot help, and only the offending record should be lost."""
    if isinstance(exc, (IntegrityError, DataError, ValueError, TypeError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


class BatchStore(Protocol):
    def write_batch(self, records: Sequence[AuditRecord]) -> None: ...

    def ping(self) -> bool: ...


class AuditWriter:
    def __init__(self, store: BatchStore, *, batch_size: int = 200, flush_interval_s: float = 0.5,
                 max_queue: int = 10_000, on_drop: OnDrop | None = None, on_write: OnWrite | None = None,
                 retries: int = 3, retry_backoff_s: float = 0.2, name: str = "audit-writer",
                 stall_after_s: float = 10.0):
        if batch_size < 1 or max_queue < 1 or flush_interval_s < 0 or retries < 0 or retry_backoff_s < 0:
            raise ValueError("batch_size and max_queue must be >= 1; intervals and retries >= 0")
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval_s
        self._max_queue = max_queue
        self._on_drop = on_drop
        self._on_write = on_write
        self._retries = retries
        self._backoff = retry_backoff_s
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple[float, AuditRecord]] = collections.deque()
        self._inflight = 0
        self._inflight_since: float | None = None    # when the write in flight began (a hung store: not healthy)
        self._stall_after = stall_after_s
        self._closing = False      # no more submits; drain and stop
        self._abort = threading.Event()   # close() gave up waiting: stop retrying
        self._healthy = True
        self._force = 0            # flush() is waiting: write now, do not wait for the flush interval
        self._stats = threading.Lock()
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, store: BatchStore, settings: Any, **kwargs: Any) -> "AuditWriter":
        """Batch size, flush interval and queue bound from the service settings (see store.AuditSettings)."""
        return cls(store, batch_size=settings.audit_batch_size, flush_interval_s=settings.audit_flush_interval_s,
                   max_queue=settings.audit_queue_max, **kwargs)

    # --- the request side: never blocks (one short lock, no I/O) ---------------------------------------------

    def submit(self, record: AuditRecord) -> bool:
        """Queue a record for writing. Returns False (and counts the drop) when it cannot be queued."""
        with self._cond:
            if self._closing:
                reason = "closed"
            elif len(self._pending) >= self._max_queue:
                reason = "queue_full"
            else:
                self._pending.append((time.monotonic(), record))
                if len(self._pending) == 1 or len(self._pending) >= self._batch_size:
                    self._cond.notify_all()
                return True
        self._dropped(1, reason)
        return False

    @property
    def healthy(self) -> bool:
        """False while the last write attempt failed because of the store (down, locked, timing out); True
        again after the next successful write. A record refused for its data does not make it False. A write
        that has not returned for stall_after_s (a database that does not answer at all) makes it False too."""
        since = self._inflight_since
        return self._healthy and (since is None or time.monotonic() - since < self._stall_after)

    @property
    def pending(self) -> int:
        """Records queued or being written."""
        with self._cond:
            return len(self._pending) + self._inflight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written or dropped. True if it got there in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._force += 1
            self._cond.notify_all()
            try:
                while self._pending or self._inflight:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._force -= 1

    def close(self, timeout: float | None = 10.0) -> bool:
        """Stop accepting records, write everything queued, stop the thread. True when nothing was lost in
        shutdown; after `timeout` the records still queued are dropped (reason "shutdown") and counted."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return True
        self._abort.set()
        with self._cond:
            left = len(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        if left:
            self._dropped(left, "shutdown")
        log.warning("audit writer: close timed out; %d queued records dropped", left)
        return False

    # --- the writer thread -----------------------------------------------------------------------------------

    def _next_batch(self) -> list[AuditRecord] | None:
        with self._cond:
            while True:
                if self._pending:
                    if self._closing or self._force or len(self._pending) >= self._batch_size:
                        break
                    wait = self._pending[0][0] + self._flush_interval - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            n = min(self._batch_size, len(self._pending))
            batch = [self._pending.popleft()[1] for _ in range(n)]
            self._inflight = n
            self._inflight_since = time.monotonic()
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._write(batch)
            except Exception:   # noqa: BLE001 - the thread must survive anything (a metric callback, a bug)
                log.exception("audit writer: unexpected error; %d records dropped", len(batch))
                self._dropped(len(batch), "store_error")
            finally:
                with self._cond:
                    self._inflight = 0
                    self._inflight_since = None
                    self._cond.notify_all()

    def _attempt(self, records: Sequence[AuditRecord]) -> BaseException | None:
        """One write; None on success, else the error (never raised)."""
        try:
            self._store.write_batch(records)
        except Exception as exc:   # noqa: BLE001 - any store failure is handled below
            if refused_by_store(exc):
                log.warning("audit store refused a batch (%s; %d records)", type(exc).__name__, len(records))
            else:
                # Once per outage at warning level (the drops are counted through on_drop, not logged).
                log.log(logging.WARNING if self._healthy else logging.DEBUG,
                        "audit store write failed (%s; %d records)", type(exc).__name__, len(records))
                self._healthy = False
            return exc
        if not self._healthy:
            log.info("audit store writes again")
        self._healthy = True
        with self._stats:
            self.written += len(records)
        self._call(self._on_write, len(records))
        return None

    def _write(self, batch: list[AuditRecord]) -> None:
        for attempt in range(self._retries + 1):
            error = self._attempt(batch)
            if error is None:
                return
            if refused_by_store(error):
                self._write_one_by_one(batch)
                return
            if attempt < self._retries and self._abort.wait(self._backoff * (2 ** attempt)):
                break
        self._dropped(len(batch), "store_error")

    def _write_one_by_one(self, batch: list[AuditRecord]) -> None:
        """The database refused the batch: keep every record it takes, count the ones it refuses."""
        if len(batch) == 1:
            self._dropped(1, "rejected")
            return
        for i, record in enumerate(batch):
            error = self._attempt([record])
            if error is None:
                continue
            if refused_by_store(error):
                self._dropped(1, "rejected")
            else:                                # the store went away meanwhile: the rest as a batch again
                self._write(batch[i:])
                return

    def _dropped(self, n: int, reason: str) -> None:
        with self._stats:
            self.dropped += n
        self._call(self._on_drop, n, reason)

    @staticmethod
    def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:   # noqa: BLE001 - a metric must never break the audit trail
            log.exception("audit writer: callback failed")
