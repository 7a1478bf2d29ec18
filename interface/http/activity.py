"""Tells the suspicious-activity monitor which API key had a write accepted,
and which client address had a request refused for its token.

A pure ASGI middleware, so it sees the answer's status after the route ran
(and the principal the scope guard put on the request's state) without
touching the body or delaying the answer: the answer is already sent when
it reports, and reporting only enqueues.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.ops.suspicious_activity import SuspiciousActivityMonitor

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class KeyActivityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, noting_status)
        monitor = _monitor(scope)
        if monitor is None:
            return
        if status == 401:
            client = scope.get("client") or ("unknown", 0)
            monitor.on_auth_failure(str(client[0]))
        elif 200 <= status < 300 and scope["method"] in WRITE_METHODS:
            principal = scope.get("state", {}).get("principal")
            if principal is not None:
                monitor.on_key_command(principal.name)


def _monitor(scope: Scope) -> SuspiciousActivityMonitor | None:
    service = getattr(scope["app"].state, "service", None)
    alerting = getattr(service, "alerting", None)
    return None if alerting is None else alerting.suspicious
