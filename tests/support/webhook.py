"""A webhook receiver on loopback for the alert tests: records every request
and can fail its first attempts or hang, as a real receiver may."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self, *, fail_first: int = 0, fail_status: int = 500) -> None:
        self.received: list[Received] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hanging = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def hang(self) -> None:
        """Answer nothing until released (or the receiver stops)."""
        self.hanging.set()

    def delivered(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.attempts += 1
                    attempt = receiver.attempts
                if receiver.hanging.is_set():
                    receiver.release.wait(30)
                    return
                if attempt <= receiver.fail_first:
                    self.send_response(receiver.fail_status)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler
