"""The load generator of the HTTP scenarios: keep-alive HTTP/1.1 over raw
asyncio streams, N connections each sending its next request as soon as the
previous answer is in (a closed loop, as ``wrk`` does).

Raw streams rather than an HTTP client library because the generator must
cost far less than the server it measures: a request here is one
``write`` and two reads, no per-request objects beyond the body. The suite
checks that claim every run by driving the bare endpoint from one process
and from two: if two processes get no more out of it, the client was not
the bottleneck (see ``suite.scenario_http_transfers``).

A workload is a small picklable object (accounts in, request bytes out), so
the same one can run in several client processes.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str = ""


@dataclass
class LoadResult:
    """Requests answered as expected, the others by status, and latencies."""

    ok: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    items_per_request: int = 1

    @property
    def per_s(self) -> float:
        return self.ok * self.items_per_request / max(self.elapsed_s, 1e-9)

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def refusals_note(self) -> str:
        """The unexpected answers by status, for a figure's note ("" when none)."""
        if not self.refused:
            return ""
        return "refused: " + ", ".join(f"{n} x {status}" for status, n in sorted(self.refused.items()))

    def merge(self, other: LoadResult) -> LoadResult:
        refused = dict(self.refused)
        for status, count in other.refused.items():
            refused[status] = refused.get(status, 0) + count
        return LoadResult(self.ok + other.ok, refused, self.latencies_s + other.latencies_s,
                          max(self.elapsed_s, other.elapsed_s), self.items_per_request)


def _amount(units: int) -> str:
    return f"{units // 10**8}.{units % 10**8:08d}"


@dataclass(frozen=True)
class Workload:
    """One kind of request: ``body(rng)`` is its JSON body."""

    path: str
    accounts: tuple[str, ...] = ()
    expected: tuple[int, ...] = (200, 201)
    items_per_request: int = 1

    def body(self, rng: random.Random) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True)
class Transfers(Workload):
    path: str = "/v1/transfers"

    def body(self, rng: random.Random) -> bytes:
        source, destination = rng.sample(self.accounts, 2)
        return json.dumps({"transfer_id": str(uuid.uuid4()), "from": source, "to": destination,
                           "amount": _amount(rng.randint(1, 1000)), "reason": "bench"}).encode()


@dataclass(frozen=True)
class Fees(Workload):
    path: str = "/v1/fees"

    def body(self, rng: random.Random) -> bytes:
        return json.dumps({"charge_id": str(uuid.uuid4()), "account_id": rng.choice(self.accounts),
                           "service_type": "notification"}).encode()


@dataclass(frozen=True)
class TransferBatches(Workload):
    path: str = "/v1/transfers/batch"
    items_per_request: int = 1000

    def body(self, rng: random.Random) -> bytes:
        items = []
        for _ in range(self.items_per_request):
            source, destination = rng.sample(self.accounts, 2)
            items.append({"transfer_id": str(uuid.uuid4()), "from": source, "to": destination,
                          "amount": _amount(rng.randint(1, 1000)), "reason": "bench"})
        return json.dumps({"transfers": items, "atomic": False}).encode()


@dataclass(frozen=True)
class OpenAccounts(Workload):
    path: str = "/v1/accounts"

    def body(self, rng: random.Random) -> bytes:
        return json.dumps({"account_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           "kind": "user"}).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._head = f"Host: {target.host}\r\nContent-Type: application/json\r\n"
        if target.token:
            self._head += f"Authorization: Bearer {target.token}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.target.host, self.target.port)
        return self

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None, "open() first"
        head = f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await asyncio.gather(self._writer.wait_closed(), return_exceptions=True)


async def _connection_loop(target: Target, workload: Workload, deadline: float, limit: int | None,
                           sent: list[int], result: LoadResult, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - load, not secrets
    connection = await Connection(target).open()
    try:
        while time.perf_counter() < deadline and (limit is None or sent[0] < limit):
            sent[0] += 1
            await _timed(connection, "POST", workload.path, workload.body(rng),
                         workload.expected, result)
    finally:
        await connection.close()


async def _timed(connection: Connection, method: str, path: str, body: bytes,
                 expected: tuple[int, ...], result: LoadResult) -> None:
    """One request, its latency recorded when its status is ``expected``."""
    started = time.perf_counter()
    status, _ = await connection.request(method, path, body)
    if status in expected:
        result.ok += 1
        result.latencies_s.append(time.perf_counter() - started)
    else:
        result.refused[status] = result.refused.get(status, 0) + 1


async def drive(target: Target, workload: Workload, *, connections: int, seconds: float,
                requests: int | None = None, seed: int = 1) -> LoadResult:
    """Closed-loop load for ``seconds`` (or until ``requests`` were sent)."""
    result = LoadResult(items_per_request=workload.items_per_request)
    sent = [0]
    started = time.perf_counter()
    await asyncio.gather(*(
        _connection_loop(target, workload, started + seconds, requests, sent, result, seed * 1000 + i)
        for i in range(connections)
    ))
    result.elapsed_s = time.perf_counter() - started
    return result


def _drive_in_process(args: tuple[Target, Workload, int, float, int]) -> LoadResult:
    target, workload, connections, seconds, seed = args
    return asyncio.run(drive(target, workload, connections=connections, seconds=seconds, seed=seed))


def drive_processes(target: Target, workload: Workload, *, processes: int, connections: int,
                    seconds: float) -> LoadResult:
    """The same closed loop split over ``processes`` client processes
    (``connections`` in all), to show whether one client process limits."""
    per_process = max(1, connections // processes)
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        parts = pool.map(_drive_in_process, [(target, workload, per_process, seconds, 7 + i)
                                             for i in range(processes)])
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    return merged


async def post_each(target: Target, requests: list[tuple[str, dict]], *,
                    connections: int) -> list[tuple[int, bytes]]:
    """Send each (path, JSON body) once over ``connections`` connections;
    the refusals (status, body) come back, for set-up steps that must work."""
    pending = iter(requests)
    refused: list[tuple[int, bytes]] = []

    async def worker() -> None:
        connection = await Connection(target).open()
        try:
            for path, body in pending:
                status, answer = await connection.request("POST", path, json.dumps(body).encode())
                if status not in (200, 201):
                    refused.append((status, answer))
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return refused


async def sample_read_lag(target: Target, accounts: tuple[str, str], stop: Callable[[], bool],
                          period_s: float = 0.1) -> list[float]:
    """Projection lag in seconds, sampled while other load runs: a probe
    transfer's answer carries its log position; the time from that answer
    until a query naming the position (``min_position``) is answered is how
    far the read models trail the log (plus one GET's round trip)."""
    connection = await Connection(target).open()
    lags: list[float] = []
    try:
        while not stop():
            body = json.dumps({"transfer_id": str(uuid.uuid4()), "from": accounts[0],
                               "to": accounts[1], "amount": "0.00000001", "reason": "probe"})
            status, answer = await connection.request("POST", "/v1/transfers", body.encode())
            if status == 201:
                answered = time.perf_counter()
                payload = json.loads(answer)
                path = f"/v1/transfers/{payload['transfer_id']}?min_position={payload['position']}"
                status, _ = await connection.request("GET", path)
                if status == 200:
                    lags.append(time.perf_counter() - answered)
            await asyncio.sleep(period_s)
    finally:
        await connection.close()
    return lags


async def read_while(target: Target, path: str, stop: Callable[[], bool], *,
                     connections: int) -> LoadResult:
    """Closed-loop GETs of ``path`` on ``connections`` until ``stop()``: the
    read side's latency under whatever load runs beside it."""
    result = LoadResult()

    async def loop() -> None:
        connection = await Connection(target).open()
        try:
            while not stop():
                await _timed(connection, "GET", path, b"", (200,), result)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    return result
