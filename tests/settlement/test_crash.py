"""A settlement process stopped at any point (before its write-ahead record,
before sending, after sending, before confirming) and restarted from the log
and the chain's files settles every movement exactly once; so does a
``deals-ledger settle`` process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application import commands as c
from application.settlement.store import SETTLED, SETTLEMENT_FILE_NAME, open_settlement_store
from application.write.event_store import LedgerApplication
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from tests.settlement.conftest import SettlementRig, SimulatedCrash
from tests.support.ledgers import LedgerHarness
from tests.support.stores import sqlite_store

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL
CRASH_POINTS = ("before_record", "before_send", "after_send", "before_confirm")


def crash_at(rig: SettlementRig, point: str, *, times: int = 1) -> list[str]:
    """The hook at ``point`` crashes the process the first ``times`` times."""
    crashed: list[str] = []

    def crash(signed) -> None:
        if len(crashed) < times:
            crashed.append(signed.signature)
            raise SimulatedCrash(point)

    setattr(rig.hooks, point, crash)
    return crashed


async def settle_through_crashes(rig: SettlementRig, crashes_max: int = 20) -> int:
    for crashes in range(crashes_max):
        try:
            await rig.settle()
            return crashes
        except SimulatedCrash:
            await rig.restart()
    raise AssertionError("still crashing")


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_at_each_step_resumes_without_double_or_lost_settlement(
    rig: SettlementRig, point: str
) -> None:
    await rig.settle()
    alice, bob = rig.open_account(), rig.open_account()
    transfer_ids = [uuid4() for _ in range(5)]
    for index, transfer_id in enumerate(transfer_ids):
        destination = alice if index % 2 else bob
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, destination, (index + 1) * DEAL))
    crashed = crash_at(rig, point, times=3)

    crashes = await settle_through_crashes(rig)

    assert crashes == 3 and len(crashed) == 3
    await rig.assert_each_settled_once(transfer_ids)
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile()).clean


async def test_a_crash_between_expiry_and_the_new_record_signs_again_once(
    rig: SettlementRig,
) -> None:
    alice = rig.open_account()
    await rig.settle()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
    rig.embedded.drop_next_transactions(1)
    sends: list[str] = []

    def expire_after_first_send(signed) -> None:
        sends.append(signed.signature)
        if len(sends) == 1:
            rig.embedded.expire_blockhash()

    rig.hooks.after_send = expire_after_first_send
    crash_at(rig, "before_record", times=2)  # the first record, then the replacement's

    await settle_through_crashes(rig)

    await rig.assert_each_settled_once([transfer_id])
    await rig.assert_chain_matches_ledger()


# --- a real process, killed -------------------------------------------------------


def _settled_count(data_dir: Path, transfer_ids: list[UUID]) -> int:
    """From the log itself (the transfers' events), read-only."""
    ledger = LedgerApplication(sqlite_store(data_dir.parent).env)
    try:
        return sum(
            ledger.transfer(transfer_id).settlement_status == SETTLED
            for transfer_id in transfer_ids
        )
    finally:
        ledger.close()


def _settled_so_far(data_dir: Path) -> int:
    """What the settler has folded so far (cheap, for watching progress)."""
    path = data_dir / SETTLEMENT_FILE_NAME
    if not path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        try:
            row = db.execute(
                "SELECT COUNT(*) FROM settlement_movements WHERE status = ?", (SETTLED,)
            ).fetchone()
        except sqlite3.OperationalError:
            return 0  # tables not created yet
    return int(row[0])


def _settle_process(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DEALS_DATA_DIR": str(data_dir),
           "DEALS_SETTLEMENT_POLL_INTERVAL_S": "0.01"}
    env.pop("DEALS_DATABASE_URL", None)
    env.pop("DEALS_SOLANA_RPC_URL", None)
    script = Path(sys.executable).parent / "deals-ledger"
    return subprocess.Popen(  # noqa: S603 - our own console script
        [str(script), "settle", *args], env=env, cwd=data_dir.parent,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def test_a_settle_process_killed_with_sigkill_resumes_exactly_once(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    data_dir = store.settings.data_dir
    ledger = LedgerHarness(store.env)
    accounts = [ledger.open_account() for _ in range(4)]
    transfer_ids = [uuid4() for _ in range(300)]
    for index, transfer_id in enumerate(transfer_ids):
        ledger.execute(c.TransferFunds(
            transfer_id, TREASURY_ID, accounts[index % 4], (index + 1) * DEAL
        ))
    ledger.close()

    worker = _settle_process(data_dir)
    try:
        _wait_until(lambda: _settled_so_far(data_dir) >= 20, 60, "some settled")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert worker.returncode == -signal.SIGKILL
        left = len(transfer_ids) - _settled_count(data_dir, transfer_ids)
        assert left > 0, "killed too late to prove anything"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)

    again = _settle_process(data_dir, "--once")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    assert _settled_count(data_dir, transfer_ids) == len(transfer_ids)
    await _assert_chain_has_each_once(tmp_path, data_dir, accounts, transfer_ids)


async def _assert_chain_has_each_once(
    tmp_path: Path, data_dir: Path, accounts: list[UUID], transfer_ids: list[UUID]
) -> None:
    ledger = LedgerHarness(sqlite_store(tmp_path).env, genesis=False)
    chain = LiteSvmChain(
        EmbeddedSolana(data_dir / "chain"), load_custody_keypair(None, data_dir)
    )
    try:
        carried: dict[UUID, list[str]] = {}
        seen: set[str] = set()
        for account in accounts:
            before = None
            while page := await chain.signatures_for_account(account, before=before):
                for signature in set(page) - seen:
                    seen.add(signature)
                    landed = await chain.transaction(signature)
                    assert landed is not None
                    if landed.error is None:
                        for transfer_id in landed.memo_transfer_ids:
                            carried.setdefault(transfer_id, []).append(signature)
                before = page[-1]
        for transfer_id in transfer_ids:
            assert carried[transfer_id] == [ledger.app.transfer(transfer_id).signature]
        for account in accounts:
            assert await chain.token_balance(account) == ledger.balance(account)
        store = open_settlement_store(ledger.app.recorder)
        assert store.backlog() == 0 and not store.in_flight()
        store.close()
    finally:
        await chain.close()
        ledger.close()
