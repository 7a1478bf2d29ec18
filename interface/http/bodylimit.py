"""Refuse request bodies over the configured size before anything parses them.

A declared ``Content-Length`` over the limit is answered 413 at once, without
reading the body; a body sent without one (chunked) is counted as it
streams and refused the moment it passes the limit. Either way the
answer is the usual error shape with code ``bad_request``.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interface.http.errors import BadRequest, error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, body_bytes_max: int) -> None:
        self.app = app
        self.body_bytes_max = body_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.body_bytes_max:
            response = error_response(self._too_large())
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _too_large(self) -> BadRequest:
        return BadRequest(
            f"request body is larger than {self.body_bytes_max} bytes", status=413
        )

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_bytes_max:
                    # FastAPI re-raises HTTPException from the body read, so
                    # this reaches the one error handler before any parsing.
                    raise HTTPException(413, self._too_large().message)
            return message

        return counted


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
