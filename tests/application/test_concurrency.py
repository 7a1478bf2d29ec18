"""Several threads and processes writing to one PostgreSQL at once, with
every fee going into the one treasury (the hot account)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from uuid import UUID

import pytest

from domain.account import Account
from domain.amounts import UNITS_PER_DEAL
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from tests.support.ledgers import LedgerHarness
from tests.support.worker import issue_commands

DEAL = UNITS_PER_DEAL
ROOT = Path(__file__).resolve().parents[2]


def start_worker(tmp_path: Path, env: dict, accounts: list[UUID], *, count: int, threads: int,
                 seed: int) -> tuple[subprocess.Popen, Path]:
    output = tmp_path / f"acks-{seed}.txt"
    config = tmp_path / f"worker-{seed}.json"
    config.write_text(json.dumps({
        "env": env, "accounts": [str(a) for a in accounts], "output": str(output),
        "count": count, "threads": threads, "seed": seed,
    }))
    process = subprocess.Popen([sys.executable, "-m", "tests.support.worker", str(config)],
                               cwd=ROOT)
    return process, output


def read_acks(*files: Path) -> tuple[set[UUID], set[UUID]]:
    accepted, refused = set(), set()
    for file in files:
        for line in file.read_text().splitlines():
            status, command_id = line.split()[:2]
            (accepted if status == "ok" else refused).add(UUID(command_id))
    return accepted, refused


def legs_per_movement(ledger: LedgerHarness) -> Counter:
    """How many debit and credit events each movement id has in the log."""
    legs: Counter = Counter()
    position = 0
    while page := ledger.app.recorder.select_notifications(start=position + 1, limit=1000):
        for notification in page:
            event = ledger.app.mapper.to_domain_event(notification)
            if isinstance(event, (Account.Debited, Account.Credited)):
                legs[(event.transfer_id, type(event).__name__)] += 1
        position = page[-1].id
    return legs


def assert_exactly_once(ledger: LedgerHarness, accepted: set[UUID], refused: set[UUID]) -> None:
    legs = legs_per_movement(ledger)
    for command_id in accepted:
        assert legs[(command_id, "Debited")] == 1, command_id
        assert legs[(command_id, "Credited")] == 1, command_id
    for command_id in refused:
        assert ledger.app.load(command_id) is None, command_id
    assert all(count == 1 for count in legs.values())


def assert_invariants(ledger: LedgerHarness, accounts: list[UUID]) -> None:
    every = [*accounts, TREASURY_ID, REWARDS_ID, ISSUANCE_ID]
    fresh = LedgerHarness(ledger.env, genesis=False)
    try:
        stored = [fresh.app.account(a) for a in every]
    finally:
        fresh.close()
    assert sum(a.balance for a in stored) == 0
    assert all(a.available >= 0 for a in stored if a.id != ISSUANCE_ID)


@pytest.mark.postgres
def test_threads_and_processes_at_once_apply_every_acknowledged_command_exactly_once(
    postgres, tmp_path
):
    ledger = LedgerHarness(postgres.env)
    try:
        accounts = [ledger.open_account(50 * DEAL) for _ in range(12)]
        workers = [start_worker(tmp_path, postgres.env, accounts, count=150, threads=4, seed=s)
                   for s in (1, 2)]
        local_log = tmp_path / "acks-local.txt"
        lock = threading.Lock()
        with local_log.open("a", buffering=1) as output:
            def record(line: str) -> None:
                with lock:
                    output.write(line + "\n")

            threads = [threading.Thread(target=issue_commands,
                                        args=(ledger, accounts, 150, 900 + n, record))
                       for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for process, _ in workers:
            assert process.wait(timeout=240) == 0
        accepted, refused = read_acks(local_log, *(output for _, output in workers))
        assert len(accepted) + len(refused) == 150 * 4 * 3
        assert len(accepted) > len(refused)
        assert_exactly_once(ledger, accepted, refused)
        assert_invariants(ledger, accounts)
    finally:
        ledger.close()
