"""Scenario 8's attacker (issue 13): one write key sends one large batch of
small transfers, then, before it is answered, dozens of atomic batches that
each hold one refused item (the second item moves more than its source
has), round after round until a deadline.

It runs in a process of its own (``run_attack``), so building its large
bodies never holds the load generator that times the victims, and counts
the statuses it got: the attacker's own refusals are expected (402 for each
bad batch), only the victims' answers are the measurement.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.http_load import Connection, Target

TINY = "0.00000001"


@dataclass(frozen=True)
class Attack:
    rich: tuple[str, ...]
    """Four funded accounts the attacker moves tiny amounts between."""
    poor: str
    """An account with nothing, the source of each bad batch's refused item."""
    big_items: int = 6000
    bad_batches: int = 50
    connections: int = 10


@dataclass
class AttackReport:
    rounds: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _item(source: str, destination: str, amount: str = TINY) -> dict:
    return {"transfer_id": str(uuid.uuid4()), "from": source, "to": destination,
            "amount": amount, "reason": "attack"}


def big_batch(attack: Attack) -> bytes:
    rich = attack.rich
    items = [_item(rich[i % 2], rich[2 + i % 2]) for i in range(attack.big_items)]
    return json.dumps({"transfers": items, "atomic": False}).encode()


def bad_atomic_batch(attack: Attack) -> bytes:
    rich = attack.rich
    items = [_item(rich[0], rich[1]), _item(attack.poor, rich[2], "5")]
    return json.dumps({"transfers": items, "atomic": True}).encode()


async def _round(attack: Attack, connections: list[Connection], report: AttackReport) -> None:
    """The big batch on the first connection, then every bad batch at once
    over the others, before the big one is answered."""
    big, bad = big_batch(attack), [bad_atomic_batch(attack) for _ in range(attack.bad_batches)]

    async def send_bad(connection: Connection, bodies: list[bytes]) -> None:
        for body in bodies:
            status, _ = await connection.request("POST", "/v1/transfers/batch", body)
            report.count(status)

    async def send_big() -> None:
        status, _ = await connections[0].request("POST", "/v1/transfers/batch", big)
        report.count(status)

    others = connections[1:]
    shares = [bad[i::len(others)] for i in range(len(others))]
    await asyncio.gather(send_big(), *(send_bad(c, s) for c, s in zip(others, shares,
                                                                       strict=True)))
    report.rounds += 1


async def _attack(target: Target, attack: Attack, seconds: float,
                  ready: Callable[[], None]) -> AttackReport:
    report = AttackReport()
    connections = [await Connection(target).open() for _ in range(1 + attack.connections)]
    ready()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            await _round(attack, connections, report)
    finally:
        for connection in connections:
            await connection.close()
    return report


def _attack_in_process(target: Target, attack: Attack, seconds: float,
                       answers: multiprocessing.Queue) -> None:
    report = asyncio.run(_attack(target, attack, seconds, lambda: answers.put("ready")))
    answers.put(report)


class AttackProcess:
    """The attacker in a child process (spawned: nothing of the parent's
    threads or sockets goes with it). ``start`` returns once its connections
    are open, so the victims' timed load and the attack begin together."""

    def __init__(self, target: Target, attack: Attack, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._answers: multiprocessing.Queue = context.Queue()
        self._process = context.Process(target=_attack_in_process, daemon=True,
                                         args=(target, attack, seconds, self._answers))

    def start(self, timeout_s: float = 60.0) -> AttackProcess:
        self._process.start()
        if self._answers.get(timeout=timeout_s) != "ready":
            raise RuntimeError("the attacker did not start")
        return self

    def report(self, timeout_s: float = 600.0) -> AttackReport:
        """Its statuses, once its last round is answered."""
        report = self._answers.get(timeout=timeout_s)
        self._process.join(timeout_s)
        return report

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
