"""Scenario 9 (issue 13, across processes): what one write key's big
non-atomic batches sent to one ``serve`` process cost the commands of
another process on the same PostgreSQL schema.

Every commit takes the events table lock (and the writer turn, shared), so
a batch committed whole made the other process's commands wait for all of
it, up to their lock timeout; it is committed in chunks now
(``application/write/chunks.py``). The attacker (``write_attack``'s, in a
process of its own) sends rounds of one large batch and the bad atomic
batches to the first server (several large ones at once: one group commit
held them all before); the victims' closed-loop transfers go to the
second, timed alone (the baseline) and during the attack. Target: no victim
gets a 5xx; the latencies are the figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from benchmarks import http_load as load
from benchmarks.http_load import Target
from benchmarks.report import Figure
from benchmarks.write_attack import Attack, AttackProcess, answered_note, times


def victims_on_another_process(attacked: Target, other: Target, accounts: tuple[str, ...],
                               attack: Attack, *, connections: int, seconds: float,
                               step: Callable[[str], None]) -> list[Figure]:
    """The victims' transfers on ``other``, alone and while ``attacked`` is
    attacked, as figures."""
    victims = load.Transfers(accounts=accounts)
    step("scenario 9: the victims' transfers on the second process, no attack")
    calm = asyncio.run(load.drive(other, victims, connections=connections, seconds=seconds))
    step("scenario 9: the victims' transfers while the first process is attacked")
    attacker = AttackProcess(attacked, attack, seconds).start()
    try:
        during = asyncio.run(load.drive(other, victims, connections=connections,
                                        seconds=seconds, seed=2))
        report = attacker.report()
    finally:
        attacker.stop()
    name = f"victims' transfers on a second process, {connections} connections"
    return [
        Figure(9, f"{name}, no attack", calm.per_s, "req/s", "", None, calm.percentile_ms(0.5),
               calm.percentile_ms(0.99), "", None,
               f"max {calm.percentile_ms(1.0):,.0f} ms. {calm.refusals_note()}".strip()),
        Figure(9, f"{name}, while the first process takes the big batches", during.per_s,
               "req/s", "no attack", calm.per_s, during.percentile_ms(0.5),
               during.percentile_ms(0.99), "victims: no 5xx",
               not any(status >= 500 for status in during.refused),
               f"max {during.percentile_ms(1.0):,.0f} ms (the longest wait behind the first "
               f"process's commits); p50 {times(during, calm, 0.5)}, "
               f"p99 {times(during, calm, 0.99)} the calm "
               f"run's; each round {attack.big_batches} {attack.big_items:,}-item non-atomic "
               f"batches and {attack.bad_batches} bad atomic batches at once; "
               f"{answered_note(report)} {during.refusals_note()}".strip()),
    ]
