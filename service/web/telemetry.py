"""Per-request telemetry: a request id, one structured access-log line, and the latency metric.

What is logged is chosen, never dumped: method, route template, status, duration, request id. Never bodies,
query strings, headers (tokens), patient identifiers or free text.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Any, Awaitable, Callable

from .metrics import REQUEST_SECONDS, REQUESTS, channel

CLIENT_GONE = 499                   # nginx's "client closed request": counted, never mistaken for a 500
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("ldn.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Only the message and whitelisted extras (`fields`) are written."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                                 "level": record.levelname.lower(), "logger": record.name,
                                 "msg": record.getMessage()}
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__   # the type only: messages can carry request content
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    import time as _time
    handler = logging.StreamHandler()
    formatter = JsonFormatter()
    formatter.converter = _time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True   # ours replaces it (theirs logs query strings)


class TelemetryMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbound = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        rid = inbound if _SAFE_ID.match(inbound) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        status = 0
        start = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500          # the server-error handler outside answers 500
            raise
        finally:
            status = status or CLIENT_GONE  # no response and no error: the client left before the answer
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(route, scope["method"], str(status)).observe(elapsed)
            REQUESTS.labels(channel(scope.get("path", "")), str(status)).inc()
            access_log.info("request", extra={"fields": {"method": scope["method"], "route": route,
                                                         "status": status, "duration_ms": round(elapsed * 1000, 3)}})
            request_id_var.reset(token)
