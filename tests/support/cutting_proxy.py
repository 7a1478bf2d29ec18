"""A TCP proxy in front of a real server that can cut a connection after
the request was delivered and answered, before the answer reaches the
client: the fault a client's retry-with-the-same-id exists for.

It speaks just enough HTTP/1.1 to find where a request and an answer end
(``Content-Length``; the ledger answers JSON with one), so keep-alive
connections carry many requests and only the chosen one is cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

READ_BYTES = 65536
HEAD_END = b"\r\n\r\n"


@dataclass
class CuttingProxy:
    upstream: tuple[str, int]
    cut_prefix: bytes = b""
    cuts_left: int = 0
    requests: list[bytes] = field(default_factory=list)
    cuts: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._start(self._accept)

    def cut(self, request_prefix: str, times: int = 1) -> None:
        """Cut the answer of the next ``times`` requests starting so
        (``"POST /v1/transfers "``), after the server answered them."""
        with self._lock:
            self.cut_prefix, self.cuts_left = request_prefix.encode(), times

    def sent(self, request_prefix: str) -> list[bytes]:
        """Every request starting so that reached the server, in order."""
        with self._lock:
            return [r for r in self.requests if r.startswith(request_prefix.encode())]

    def close(self) -> None:
        """Stop: every socket shut (which wakes its thread), every thread joined."""
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its side
                sock.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._start(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server:
            with self._lock:
                self._sockets += [client, server]
            client_reader, server_reader = _Reader(client), _Reader(server)
            while (request := client_reader.message()) is not None:
                server.sendall(request)
                answer = server_reader.message()
                if answer is None or self._cutting(request):
                    return  # closing both: the client sees the connection cut
                client.sendall(answer)

    def _cutting(self, request: bytes) -> bool:
        with self._lock:
            self.requests.append(request)
            if self.cuts_left and request.startswith(self.cut_prefix):
                self.cuts_left -= 1
                self.cuts += 1
                return True
            return False


class _Reader:
    """Whole HTTP/1.1 messages (head and Content-Length body) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def message(self) -> bytes | None:
        while HEAD_END not in self.buffer:
            if not self._more():
                return None
        head, _, _ = self.buffer.partition(HEAD_END)
        total = len(head) + len(HEAD_END) + _content_length(head)
        while len(self.buffer) < total:
            if not self._more():
                return None
        message, self.buffer = self.buffer[:total], self.buffer[total:]
        return message

    def _more(self) -> bool:
        try:
            chunk = self.sock.recv(READ_BYTES)
        except OSError:
            return False
        self.buffer += chunk
        return bool(chunk)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
