"""A writer process killed (SIGKILL) in the middle of a stream of commands
loses none it acknowledged and leaves no half movement."""

from __future__ import annotations

import os
import signal
import time

from domain.amounts import UNITS_PER_DEAL
from tests.application.test_concurrency import (
    assert_exactly_once,
    assert_invariants,
    legs_per_movement,
    read_acks,
    start_worker,
)
from tests.support.ledgers import LedgerHarness

DEAL = UNITS_PER_DEAL
ACKS_BEFORE_KILL = 300
WAIT_S_MAX = 120


def wait_for_acks(output, count: int, process) -> None:
    """Bounded wait on a condition (the worker's acknowledgements), not a sleep."""
    deadline = time.monotonic() + WAIT_S_MAX
    while time.monotonic() < deadline:
        if output.exists() and output.read_text().count("\n") >= count:
            return
        assert process.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} acknowledgements in {WAIT_S_MAX} s")


def test_a_killed_writer_loses_nothing_it_acknowledged(store, tmp_path):
    ledger = LedgerHarness(store.env)
    try:
        accounts = [ledger.open_account(20 * DEAL) for _ in range(6)]
        process, output = start_worker(tmp_path, store.env, accounts, count=100_000, threads=3,
                                       seed=7)
        wait_for_acks(output, ACKS_BEFORE_KILL, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        accepted, refused = read_acks(output)
        assert len(accepted) >= ACKS_BEFORE_KILL // 2
        assert_exactly_once(ledger, accepted, refused)
        legs = legs_per_movement(ledger)
        for movement in {movement for movement, _ in legs}:
            assert legs[(movement, "Debited")] == legs[(movement, "Credited")] == 1
        assert_invariants(ledger, accounts)
    finally:
        ledger.close()
