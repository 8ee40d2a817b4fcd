"""ASGI middleware: refuse request bodies over a size limit with 413 (problem+json; an OperationOutcome under
/cds-services), before anything parses them.

The body is read here (up to the limit) and replayed to the app: the framework reads whole bodies anyway, and
this way a chunked upload without Content-Length is cut off just the same.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from .problems import FHIR_JSON, PROBLEM_JSON, operation_outcome, wants_outcome

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimitMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Send) -> None:
        detail = f"The request body exceeds {self.max_bytes} bytes."
        if wants_outcome(scope.get("path", "")):
            body, media = json.dumps(operation_outcome(413, f"Request body too large: {detail}")).encode(), FHIR_JSON
        else:
            body = json.dumps({"type": "about:blank", "title": "Request body too large", "status": 413,
                               "detail": detail}).encode()
            media = PROBLEM_JSON
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
