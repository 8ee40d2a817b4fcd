"""Drain at shutdown: on SIGTERM a worker first reports not ready (/readyz 503) while it keeps serving for
SHUTDOWN_DRAIN_S, so load balancers (Kubernetes endpoints, nginx health checks) stop sending before it stops
accepting; then uvicorn's own graceful shutdown runs (in-flight requests finish, the audit queue is flushed).

Installed in each worker's lifespan, over the handler uvicorn's Server set (it runs in the worker's main thread).
SIGINT (Ctrl-C) and the end of the drain hand the signal to uvicorn; repeated SIGTERMs during a drain are
ignored (a process group signal and the supervisor's forward both arrive). Without uvicorn's handler (tests'
in-process clients) nothing is installed.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any, Callable

log = logging.getLogger("ldn.drain")


class Drain:
    def __init__(self) -> None:
        self.draining = False

    def install(self, drain_s: float) -> bool:
        """Take over SIGTERM and SIGINT from uvicorn's handler; False when there is none to take over."""
        if threading.current_thread() is not threading.main_thread():
            return False
        uvicorn_exit = signal.getsignal(signal.SIGTERM)
        if not callable(uvicorn_exit) or getattr(uvicorn_exit, "__name__", "") != "handle_exit":
            return False
        loop = asyncio.get_running_loop()

        def on_signal(sig: int, frame: Any) -> None:
            if sig != signal.SIGTERM or drain_s <= 0:
                uvicorn_exit(sig, frame)
            elif not self.draining:
                self.draining = True
                log.info("draining before shutdown", extra={"fields": {"drain_s": drain_s}})
                loop.call_soon_threadsafe(loop.call_later, drain_s, _exit_now, uvicorn_exit, sig)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        return True


def _exit_now(uvicorn_exit: Callable[[int, Any], None], sig: int) -> None:
    uvicorn_exit(sig, None)
