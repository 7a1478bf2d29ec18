"""Slow, huge and too many connections are cut off, no key needed: raw
sockets against a real ``deals-ledger serve`` (interface/http/edge.py).

The module's server has small bounds (1 s timeouts, a 4 KiB head; the
connection-limit tests start servers of their own), so every wait below is
for the server to act on its own deadline; the tests' own waits are 30
times longer and only keep a broken server from hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.http import ADMIN, API_KEYS, ServeProcess

WAIT_S = 30.0
"""How long a test waits for the server to act on a 1 s deadline."""
HEAD_BYTES_MAX = 4096
CONNECTIONS_MAX = 16
BOUNDS = {
    "DEALS_HEADER_TIMEOUT_S": "1", "DEALS_BODY_TIMEOUT_S": "1", "DEALS_KEEP_ALIVE_TIMEOUT_S": "1",
    "DEALS_MAX_HEADER_BYTES": str(HEAD_BYTES_MAX),
}


def serve(tmp_path_factory, name: str, files_max: int | None = None,
          **env: str) -> ServeProcess:
    workdir = tmp_path_factory.mktemp(name)
    return ServeProcess(workdir, {"DEALS_DATA_DIR": str(workdir / "var"), "DEALS_API_KEYS": API_KEYS,
                                  "DEALS_SETTLEMENT": "off", **env}, files_max=files_max)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServeProcess]:
    process = serve(tmp_path_factory, "edge", **BOUNDS)
    yield process
    process.terminate()


def connect(server: ServeProcess) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=WAIT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with sock:
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def refusal(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)["error"]


def log_position(server: ServeProcess) -> int:
    return httpx.get(f"{server.url}/ready", timeout=WAIT_S).json()["store_position"]


def test_a_connection_that_sends_nothing_is_closed(server):
    assert until_closed(connect(server)) == b""


def test_an_unfinished_request_head_is_answered_408(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: ledger\r\n")
    status, error = refusal(until_closed(sock))
    assert (status, error["code"]) == (408, "request_timeout")
    assert "head did not arrive within 1 s" in error["message"]


def test_a_head_sent_a_byte_at_a_time_gets_no_more_time(server):
    """Each byte used to restart nothing and nothing ended the wait; now the
    head as a whole has its timeout however it trickles in."""
    head = b"GET /health HTTP/1.1\r\nHost: ledger\r\nX-Slow: " + b"s" * 2000 + b"\r\n\r\n"
    sock = connect(server)
    sock.settimeout(0.1)  # the pace of the drip, not a wait for the server
    answer = b""
    for byte in head:
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        break
    sock.settimeout(WAIT_S)
    answer += until_closed(sock)
    assert refusal(answer)[0] == 408


def test_an_unfinished_body_is_answered_408_and_applies_nothing(server):
    before = log_position(server)
    body = b'{"transfer_id": "' + b"1" * 100
    sock = connect(server)
    sock.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: ledger\r\n"
                 b"Authorization: Bearer " + ADMIN.encode() + b"\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n" + body)
    status, error = refusal(until_closed(sock))
    assert (status, error["code"]) == (408, "request_timeout")
    assert "body did not arrive within 1 s" in error["message"]
    assert log_position(server) == before


def test_a_head_over_the_limit_is_431_before_it_ends(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * (HEAD_BYTES_MAX + 100))
    status, error = refusal(until_closed(sock))
    assert (status, error["code"]) == (431, "bad_request")
    assert str(HEAD_BYTES_MAX) in error["message"]


def test_a_whole_head_over_the_limit_is_431(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * (HEAD_BYTES_MAX + 100) + b"\r\n\r\n")
    assert refusal(until_closed(sock))[0] == 431


def _rss_bytes(server: ServeProcess) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


def test_unfinished_8_mib_heads_are_cut_and_cost_little_memory(server):
    """20 connections each sending an 8 MiB header without end took 174 MB."""
    before = _rss_bytes(server)
    header = b"GET /health HTTP/1.1\r\nX-Huge: " + b"h" * (8 * 1024 * 1024)
    ended: list[bool] = []

    def send_huge() -> None:
        sock = connect(server)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(header)
        until_closed(sock)  # returns once the server has closed it
        ended.append(True)

    threads = [threading.Thread(target=send_huge) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 2)
    assert len(ended) == 20
    assert _rss_bytes(server) - before < 48 * 1024 * 1024
    assert httpx.get(f"{server.url}/health", timeout=WAIT_S).status_code == 200


def test_a_request_httptools_cannot_parse_is_answered_in_the_error_shape(server):
    sock = connect(server)
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    status, error = refusal(until_closed(sock))
    assert (status, error["code"]) == (400, "bad_request")


def test_an_idle_keep_alive_connection_is_closed_even_if_it_sends_blank_lines(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: ledger\r\n\r\n")
    sock.settimeout(0.2)  # the pace of the blank lines
    received, closed = b"", False
    for _ in range(int(WAIT_S / 0.2)):
        try:
            sock.sendall(b"\r\n")
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        received += chunk  # the answer to the request, in one or more reads
    sock.close()
    assert received.startswith(b"HTTP/1.1 200") and received.endswith(b'{"status":"ok"}')
    assert closed


def test_past_the_connection_limit_the_longest_waiting_make_room(tmp_path_factory):
    """40 unfinished heads against a limit of 16 (and a head timeout long
    enough not to end any of them): the oldest are closed (503 in the error
    shape), the newest are not, and a new client is served."""
    server = serve(tmp_path_factory, "room", DEALS_MAX_CONNECTIONS=str(CONNECTIONS_MAX),
                   DEALS_HEADER_TIMEOUT_S="120")
    holders: list[socket.socket] = []
    try:
        hold_unfinished_heads(server, 40, holders)
        answer = httpx.get(f"{server.url}/health", timeout=WAIT_S)
        assert answer.status_code == 200
        status, error = refusal(until_closed(holders[0]))
        assert (status, error["code"]) == (503, "unavailable")
        assert "connection limit" in error["message"]
        newest = holders[-1]
        newest.sendall(b"Host: ledger\r\n\r\n")  # it still gets its answer
        assert until_closed_or_answered(newest).startswith(b"HTTP/1.1 200")
    finally:
        for sock in holders:
            sock.close()
        server.terminate()


def hold_unfinished_heads(server: ServeProcess, count: int,
                          holders: list[socket.socket]) -> None:
    """Open ``count`` connections that each began a request and stopped,
    into ``holders`` (the caller closes them, also when this fails)."""
    for _ in range(count):
        sock = connect(server)
        holders.append(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\n")


def until_closed_or_answered(sock: socket.socket) -> bytes:
    received = b""
    while not received.endswith(b'{"status":"ok"}'):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_under_an_open_file_limit_of_120_health_survives_100_slow_connections(
        tmp_path_factory):
    """The limit is kept under the file limit: 100 unfinished heads used to
    take every descriptor, and /health (or anything) could not connect."""
    server = serve(tmp_path_factory, "files", files_max=120, DEALS_HEADER_TIMEOUT_S="120")
    holders: list[socket.socket] = []
    try:
        hold_unfinished_heads(server, 100, holders)
        for _ in range(3):
            assert httpx.get(f"{server.url}/health", timeout=WAIT_S).status_code == 200
        assert "at most 40 connections" in server.stderr_path.read_text()
    finally:
        for sock in holders:
            sock.close()
        server.terminate()
