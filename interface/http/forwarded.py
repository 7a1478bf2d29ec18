"""X-Forwarded-For and X-Forwarded-Proto, believed only from the configured
proxies (DEALS_TRUSTED_PROXIES, none by default).

uvicorn's own proxy middleware takes any forwarded entry as the client's
host, so ``garbage<script>`` from a trusted proxy became the address in the
access log, the rate limits and the alerts. Here an entry that is not an IP
address (stdlib ``ipaddress``) is ignored: the client is the right-most
valid address that is not itself a trusted proxy, else the peer stays."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

SCHEMES = {"http": "http", "https": "https"}
WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class ForwardedHeadersMiddleware:
    """Rewrites the scope's client and scheme for requests from a trusted
    proxy (in place, so uvicorn's access log sees the same address)."""

    def __init__(self, app: Any, trusted: Iterable[str] = ()) -> None:
        self.app = app
        entries = tuple(trusted)
        self.everyone = "*" in entries  # only when nothing but the proxy reaches the port
        self.trusted: list[IPv4Network | IPv6Network] = [
            ip_network(entry, strict=False) for entry in entries if entry != "*"]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (self.trusted or self.everyone) and scope["type"] in ("http", "websocket") and self._is_trusted(
                (scope.get("client") or ("",))[0]):
            self._rewrite(scope)
        await self.app(scope, receive, send)

    def _is_trusted(self, host: str) -> bool:
        address = _address(host)
        if address is not None and self.everyone:
            return True
        return address is not None and any(address in network for network in self.trusted)

    def _rewrite(self, scope: dict) -> None:
        forwarded_for = _header(scope, b"x-forwarded-for")
        if forwarded_for is not None:
            client = self.client_of(forwarded_for)
            if client is not None:
                scope["client"] = (client, 0)
        proto = _header(scope, b"x-forwarded-proto")
        if proto is not None:
            table = WEBSOCKET_SCHEMES if scope["type"] == "websocket" else SCHEMES
            scheme = table.get(proto.split(",")[-1].strip().lower())
            if scheme is not None:
                scope["scheme"] = scheme

    def client_of(self, forwarded_for: str) -> str | None:
        """The right-most valid entry that is not a trusted proxy (the first
        hop a trusted proxy saw); invalid entries are skipped, never used."""
        valid = [entry for entry in (part.strip() for part in forwarded_for.split(","))
                 if _address(entry) is not None]
        for entry in reversed(valid):
            if not self._is_trusted(entry):
                return entry
        return valid[0] if valid else None


def _address(text: str) -> Any:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _header(scope: dict, name: bytes) -> str | None:
    """Every line of the header joined with commas (as proxies append)."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name]
    return ",".join(values) if values else None
