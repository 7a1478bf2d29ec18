"""Scenario 8 (issue 13): what one write key's bad atomic batches cost the
other callers.

The attacker sends one large batch of small transfers, then, before it is
answered, dozens of atomic batches at once that each hold one refused item
(the second item moves more than its source has), round after round. The
victims are other callers' closed-loop transfers between their own accounts
on the same server, timed three times for the same duration: alone (the
baseline), beside the same requests with nothing refused (the control: what
the large batch and the atomic batches cost when they are legitimate), and
during the attack. The scenario's target is that no
victim gets a 5xx; the latencies are the figures.

The attacker runs in a process of its own (``AttackProcess``), so building
its large bodies never holds the load generator that times the victims; it
counts the statuses it got (402 for each bad batch is expected).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from benchmarks import http_load as load
from benchmarks.http_load import Connection, Target
from benchmarks.report import Figure

TINY = "0.00000001"


@dataclass(frozen=True)
class Attack:
    rich: tuple[str, ...]
    """Four funded accounts the attacker moves tiny amounts between."""
    poor: str
    """An account with nothing, the source of each bad batch's refused item."""
    big_items: int = 6000
    big_batches: int = 1
    """Large batches in flight at once, each on a connection of its own."""
    bad_batches: int = 50
    """Each on a connection of its own: all of them in flight at once."""
    refused: bool = True
    """False: the same atomic batches with nothing refused (the control run)."""


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
    second = _item(attack.poor, rich[2], "5") if attack.refused else _item(rich[3], rich[2])
    items = [_item(rich[0], rich[1]), second]
    return json.dumps({"transfers": items, "atomic": True}).encode()


async def _round(target: Target, attack: Attack, report: AttackReport) -> None:
    """The big batches on the first connections, then every bad batch at once,
    one a connection, before the big one is answered. Connections are opened
    for each round: the server closes keep-alive connections idle for 5 s,
    as these are while a round's large batch is decided."""
    connections = [await Connection(target).open()
                   for _ in range(attack.big_batches + attack.bad_batches)]
    try:
        await _send_round(attack, connections, report)
    finally:
        for connection in connections:
            await connection.close()


async def _send_round(attack: Attack, connections: list[Connection],
                      report: AttackReport) -> None:
    bodies = ([big_batch(attack) for _ in range(attack.big_batches)]
              + [bad_atomic_batch(attack) for _ in range(attack.bad_batches)])

    async def send(connection: Connection, body: bytes) -> None:
        status, _ = await connection.request("POST", "/v1/transfers/batch", body)
        report.count(status)

    await asyncio.gather(*(send(connection, body)
                           for connection, body in zip(connections, bodies, strict=True)))
    report.rounds += 1


async def _attack(target: Target, attack: Attack, seconds: float,
                  ready: Callable[[], None]) -> AttackReport:
    report = AttackReport()
    ready()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await _round(target, attack, report)
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
        """Its statuses, once its last round is answered; an attacker that
        died (its traceback is on stderr) raises at once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                report: AttackReport = self._answers.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError("the attacker process died") from None
                continue
            self._process.join(timeout_s)
            return report
        raise RuntimeError(f"the attacker sent no report in {timeout_s} s")

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)


def _attacked(target: Target, victims: load.Workload, attack: Attack, connections: int,
              seconds: float) -> tuple[load.LoadResult, AttackReport]:
    attacker = AttackProcess(target, attack, seconds).start()
    try:
        result = asyncio.run(load.drive(target, victims, connections=connections,
                                        seconds=seconds, seed=2))
        return result, attacker.report()
    finally:
        attacker.stop()


def victims_under_attack(target: Target, accounts: tuple[str, ...], attack: Attack, *,
                         connections: int, seconds: float,
                         step: Callable[[str], None]) -> list[Figure]:
    """The three timed runs of the victims' transfers, as figures."""
    victims = load.Transfers(accounts=accounts)
    step("scenario 8: the victims' transfers, no attack")
    calm = asyncio.run(load.drive(target, victims, connections=connections, seconds=seconds))
    step("scenario 8: the victims' transfers beside the same batches, none refused")
    control, control_report = _attacked(target, victims, replace(attack, refused=False),
                                        connections, seconds)
    step("scenario 8: the victims' transfers during the attack")
    attacked, report = _attacked(target, victims, attack, connections, seconds)
    name = f"victims' transfers, {connections} connections"
    return [
        Figure(8, f"{name}, no attack", calm.per_s, "req/s", "", None, calm.percentile_ms(0.5),
               calm.percentile_ms(0.99), "", None, calm.refusals_note()),
        Figure(8, f"{name}, beside the same batches, none refused", control.per_s, "req/s",
               "no attack", calm.per_s, control.percentile_ms(0.5),
               control.percentile_ms(0.99), "", None,
               f"{answered_note(control_report)} {control.refusals_note()}".strip()),
        Figure(8, f"{name}, during the write attack", attacked.per_s, "req/s", "no attack",
               calm.per_s, attacked.percentile_ms(0.5), attacked.percentile_ms(0.99),
               "victims: no 5xx", not any(status >= 500 for status in attacked.refused),
               f"p50 {times(attacked, calm, 0.5)}, p99 {times(attacked, calm, 0.99)} the "
               f"calm run's ({times(attacked, control, 0.5)}, {times(attacked, control, 0.99)} "
               f"the control's); each round one {attack.big_items:,}-item batch "
               f"and {attack.bad_batches} bad atomic batches at once; "
               f"{answered_note(report)} {attacked.refusals_note()}".strip()),
    ]


def times(result: load.LoadResult, baseline: load.LoadResult, share: float) -> str:
    return f"{result.percentile_ms(share) / max(baseline.percentile_ms(share), 1e-9):.1f}x"


def answered_note(report: AttackReport) -> str:
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(report.statuses.items()))
    return f"the attacker's {report.rounds} rounds answered {answers}."
