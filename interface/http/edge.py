"""The connection edge: slow, huge or too many connections are cut off, no key needed.

uvicorn's httptools protocol bounds none of this: a connection that sends
nothing, or its request head or body a byte at a time, stays open as long as
the client likes (uvicorn's only timer is the idle keep-alive one, armed
after a response); httptools buffers an unfinished header line without any
limit; and connections are accepted until the process runs out of file
descriptors, after which nothing, ``/health`` included, is served. (h11 has
a head-size bound, ``h11_max_incomplete_event_size``, but no timeouts either,
and a parser several times slower on every request.)

``EdgeProtocol`` is uvicorn's httptools protocol with those bounds added,
each a setting (``interface.wiring.settings``):

- the request head must be complete within ``header_timeout_s`` of its
  first byte (of the connection, for the first request): else 408
  ``request_timeout`` and the connection is closed (a connection that never
  sent a byte is just closed);
- the body within ``body_timeout_s`` of the head: else 408 as well;
- a head over ``header_bytes_max`` (request line and headers) is 431
  ``bad_request``, refused while it is still arriving, so an unfinished
  8 MiB header costs at most the limit plus one socket read;
- at most ``connections_max`` open connections: a new one past the limit
  makes room by closing the connection that has waited longest without a
  whole request (idle keep-alive and unfinished heads first, then
  unfinished bodies; never one whose request is being answered), or, if
  every connection is busy, is answered 503 ``unavailable`` and closed. So
  slow connections cannot keep a fresh client (or a health probe) out. The
  limit is also kept under the open-file limit, minus what the stores need.

Every refusal is in the API's one error shape, from the one status table.
The common case costs nothing more than a few attribute writes: a request
whose head and body arrive in one read arms no timer.
"""

from __future__ import annotations

import http
import itertools
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from application.errors import LedgerUnavailable
from application.metrics_registry import metric
from domain.errors import LedgerError
from interface.http.errors import BadRequest, RequestTimeout, error_body, headers_of, status_of

logger = logging.getLogger(__name__)

FILE_DESCRIPTORS_RESERVED = 80
"""Descriptors kept for everything but client connections: a process with
its PostgreSQL pools full, Redis, the embedded chain and the metrics files
held about 60 under load."""

CONNECTIONS_CUT = metric(
    Counter, "deals_ledger_http_connections_cut", "Connections closed at the edge, by reason "
    "(silent, header_timeout, body_timeout, header_too_large, malformed, connection_limit, "
    "evicted)", labels=("reason",),
)

# Where a connection is in its current request.
HEAD = "head"  # waiting for (the rest of) a request head
BODY = "body"  # the head arrived; waiting for (the rest of) the body
ANSWERING = "answering"  # the request arrived whole; the app has it
IDLE = "idle"  # answered; a keep-alive connection waiting for the next request
_EVICTION_ORDER = {IDLE: 0, HEAD: 0, BODY: 1}
_STAGE_ORDER = itertools.count()
"""Which connection entered its stage first (cheaper than a clock read)."""


@dataclass(frozen=True)
class EdgeLimits:
    header_timeout_s: float
    body_timeout_s: float
    header_bytes_max: int
    connections_max: int


def connections_max_under_file_limit(connections_max: int) -> int:
    """``connections_max``, lowered so the process keeps descriptors for its
    stores under its open-file limit (RLIMIT_NOFILE); raises RuntimeError
    when the limit leaves no room at all."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return connections_max
    room = soft - FILE_DESCRIPTORS_RESERVED
    if room < 1:
        raise RuntimeError(
            f"the open-file limit ({soft}) leaves no room for connections; raise it "
            f"(ulimit -n) above {FILE_DESCRIPTORS_RESERVED}")
    if room < connections_max:
        logger.warning("at most %d connections (DEALS_MAX_CONNECTIONS is %d): the open-file "
                       "limit is %d", room, connections_max, soft)
    return min(connections_max, room)


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the module's bounds."""

    def __init__(self, *args: Any, limits: EdgeLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.stage = HEAD
        self.stage_since = 0
        self.head_bytes = 0
        self._deadline: Any = None
        self._cut = False

    # --- the connection ------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter(HEAD)
        self._arm(self.limits.header_timeout_s)  # a silent connection is bounded too
        if len(self.connections) > self.limits.connections_max and not self._make_room():
            self._refuse(LedgerUnavailable(
                "the server is at its connection limit and every connection is busy; retry"),
                "connection_limit")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._cut:
            return
        if self.stage in (HEAD, IDLE):
            self.head_bytes += len(data)
        super().data_received(data)
        if self._cut:
            return
        if self.stage == HEAD and self.head_bytes > self.limits.header_bytes_max:
            self._refuse(self._head_too_large(), "header_too_large")
        elif self.stage in (HEAD, IDLE) and self._deadline is None:
            # IDLE: bytes that began no request (blank lines) stopped uvicorn's
            # keep-alive timer; they get no more time than a head would.
            self._arm(self.limits.header_timeout_s)
        elif self.stage == BODY and self._deadline is None:
            self._arm(self.limits.body_timeout_s)

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: the API's error shape, not text."""
        if not self._cut:
            self._refuse(BadRequest("malformed HTTP request"), "malformed")

    # --- the parser's callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.stage == IDLE:
            self._enter(HEAD)

    def on_headers_complete(self) -> None:
        if self._cut:
            return
        if self.head_bytes > self.limits.header_bytes_max and self._head_size() > \
                self.limits.header_bytes_max:  # the reads counted may hold a body too
            self._refuse(self._head_too_large(), "header_too_large")
            return
        self._disarm()
        self._enter(BODY)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._cut:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._cut:
            return
        self._disarm()
        self._enter(ANSWERING)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)
        super().on_response_complete()
        if not queued:
            self._enter(IDLE)
            self.head_bytes = 0

    # --- bounds ------------------------------------------------------------------------

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _enter(self, stage: str) -> None:
        self.stage = stage
        self.stage_since = next(_STAGE_ORDER)

    def _arm(self, timeout_s: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout_s, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self._cut or self.stage == ANSWERING:
            return
        if self.stage == IDLE or self.head_bytes == 0 and self.stage == HEAD:
            self._close("silent")  # nothing to answer: no request began
        elif self.stage == HEAD:
            self._refuse(RequestTimeout(
                f"the request head did not arrive within {self.limits.header_timeout_s:g} s"),
                "header_timeout")
        else:
            self._refuse(RequestTimeout(
                f"the request body did not arrive within {self.limits.body_timeout_s:g} s"),
                "body_timeout")

    def _head_too_large(self) -> LedgerError:
        return BadRequest(f"the request head is larger than {self.limits.header_bytes_max} "
                          "bytes", status=431)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest without a whole
        request; False when every other connection has one being answered."""
        waiting = [other for other in self.connections
                   if other is not self and isinstance(other, EdgeProtocol) and other.evictable]
        if not waiting:
            return False
        victim = min(waiting, key=lambda other: (_EVICTION_ORDER[other.stage],
                                                 other.stage_since))
        victim.evict()
        return True

    @property
    def evictable(self) -> bool:
        answering = self.cycle is not None and not self.cycle.response_complete
        return (not self._cut and self.stage in _EVICTION_ORDER
                and (self.stage == BODY or not answering))

    def evict(self) -> None:
        if self.stage == IDLE or self.head_bytes == 0:
            self._close("evicted")  # no request in progress: nothing to answer
            return
        self._refuse(LedgerUnavailable(
            "the server is at its connection limit and closed this unfinished request, "
            "the one that waited longest; retry"), "evicted")

    def _refuse(self, error: LedgerError, reason: str) -> None:
        """Answer ``error`` (unless a response already began) and close."""
        answered = False
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            answered = cycle.response_started
            cycle.disconnected = True  # the app's own answer, if any, goes nowhere
            cycle.message_event.set()
        if not answered and not self.transport.is_closing():
            self.transport.write(refusal_bytes(error))
        self._close(reason)

    def _close(self, reason: str) -> None:
        self._cut = True
        self._disarm()
        CONNECTIONS_CUT.labels(reason).inc()
        logger.debug("connection from %s cut: %s", self.client, reason)
        if not self.transport.is_closing():
            self.transport.close()


def refusal_bytes(error: LedgerError) -> bytes:
    """A whole HTTP/1.1 response for ``error``, closing the connection."""
    status = status_of(error)
    body = json.dumps(error_body(error.code, error.message)).encode()
    headers = {**headers_of(error, status), "content-type": "application/json",
               "content-length": str(len(body)), "connection": "close"}
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
