"""The event log restored alone (docs/operations.md: the embedded
``events.sqlite`` put back, the derived files beside it kept; on PostgreSQL
only the log's tables), then written to before the settler's chain lookup:
the settlement store kept from the lost timeline is folded again from the
log, never folded onto (issue 18, reviewer's round 7).

Kept, it skipped the log's new events at positions it had folded (on
SQLite movements stayed ``queued`` in the log while its backlog showed 0),
its deposit cursor stood past a deposit the log lost (never credited
again), and its record of a movement the log lost vouched for the chain's
history (settlement went on instead of stopping). Each test writes the same
timeline: a connected wallet's deposit credited and a movement settled
after the backup, both lost by the restore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from solders.pubkey import Pubkey

from application import commands as c
from application.settlement.chain_lookup import ChainAheadOfLog
from application.settlement.fold import SettlementFold
from application.settlement.store import open_settlement_store
from domain.system import TREASURY_ID, deposit_id
from domain.transfer import SETTLED
from tests.settlement.conftest import DEAL, SettlementRig
from tests.settlement.test_deposits import scanner
from tests.settlement.test_restores import StoreSnapshot, _carried, _restart
from tests.support.outside_wallets import OutsideWallet
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio

FUNDED, DEPOSITED, LOST, LATER = 10 * DEAL, 2 * DEAL, 1 * DEAL, DEAL // 100
WRITTEN = 12


@dataclass(frozen=True)
class Lost:
    """What the restore took from the log: a deposit's credit (its chain
    signature) and a movement that landed (its signature)."""

    account: UUID
    deposit_signature: str
    movement_signature: str


async def _lose_a_deposit_and_a_movement(rig: SettlementRig, snapshot: StoreSnapshot
                                         ) -> tuple[SettlementRig, Lost]:
    """Back up, credit a deposit and settle a movement, put the log alone
    back; the rig restarted over the restored log and the kept store."""
    account = rig.open_account(funded=FUNDED)
    await rig.settle()
    user = OutsideWallet(rig.embedded, Pubkey.from_string(rig.chain.mint_address))
    user.fund(rig.custody, 5 * DEAL)
    rig.execute(c.ConnectWallet(account, user.address))
    await rig.settle()
    rig = await _restart(rig, while_stopped=snapshot.take)
    user.chain = rig.embedded
    deposited = user.deposit(rig.chain.token_account_address(account), DEPOSITED).signature
    await scanner(rig).scan()
    moved = uuid4()
    rig.execute(c.TransferFunds(moved, TREASURY_ID, account, LOST))
    await rig.settle()
    assert rig.ledger.balance(account) == FUNDED + DEPOSITED + LOST
    signature = rig.transfer(moved).signature
    assert signature is not None
    rig = await _restart(rig, while_stopped=snapshot.restore_log)
    assert rig.ledger.balance(account) == FUNDED
    return rig, Lost(account, deposited, signature)


def _write(rig: SettlementRig, account: UUID, count: int, into: list[UUID]) -> None:
    """The API takes commands: ``count`` movements to ``account``."""
    for _ in range(count):
        into.append(uuid4())
        rig.execute(c.TransferFunds(into[-1], TREASURY_ID, account, LATER))


async def _then_everything_settles_once(rig: SettlementRig, lost: Lost, later: list[UUID]
                                       ) -> SettlementRig:
    """After the lookup stopped on the lost movement (the caller asserts
    it): the lost deposit is credited again, once; every movement the log
    has waits in the store and settles once the operator acknowledged the
    lost one; nothing executes twice. The rig started again."""
    for _ in range(2):  # a second scan credits nothing again
        await scanner(rig).scan()
    assert rig.ledger.app.transfer(deposit_id(lost.deposit_signature, lost.account))
    assert rig.ledger.balance(lost.account) == FUNDED + DEPOSITED + len(later) * LATER
    assert rig.store.backlog() == len(later), "movements of the log missing from the store"
    rig = await _restart(rig, acknowledged=frozenset({lost.movement_signature}))
    await rig.settle()
    assert {rig.transfer(t).settlement_status for t in later} <= {SETTLED}
    assert rig.store.backlog() == 0
    assert max((await _carried(rig)).values()) == 1
    assert (await rig.chain_balance(lost.account)
            == rig.ledger.balance(lost.account) + LOST)  # what the operator reconciles
    return rig


async def test_a_log_restored_alone_and_written_to_before_the_settler_starts(
    store: StoreConfig, tmp_path: Path,
) -> None:
    """``serve`` with settlement off (or a ``settle`` worker started later)
    takes commands first (without them the store stood past the log's head
    and was folded again already: ``test_restores``)."""
    rig = SettlementRig(store, tmp_path)
    snapshot = StoreSnapshot(store, tmp_path)
    rig, lost = await _lose_a_deposit_and_a_movement(rig, snapshot)
    later: list[UUID] = []
    try:
        _write(rig, lost.account, WRITTEN, later)
        with pytest.raises(ChainAheadOfLog, match=lost.movement_signature):
            await rig.settle()
        rig = await _then_everything_settles_once(rig, lost, later)
    finally:
        await rig.close()


async def test_commands_taken_during_the_blockhash_wait_mix_no_timelines(
    store: StoreConfig, tmp_path: Path,
) -> None:
    """On a JSON-RPC chain the starting settler waits for blockhash expiry
    and the API takes commands meanwhile (``/ready`` still 200): the log
    passes the kept store's position before the lookup."""
    rig = SettlementRig(store, tmp_path, chain_kind="rpc")
    snapshot = StoreSnapshot(store, tmp_path)
    rig, lost = await _lose_a_deposit_and_a_movement(rig, snapshot)
    later: list[UUID] = []
    try:
        rig.while_chain_waits = lambda: _write(rig, lost.account, WRITTEN - len(later), later)
        with pytest.raises(ChainAheadOfLog, match=lost.movement_signature):
            await rig.settle()
        assert len(later) == WRITTEN
        rig = await _then_everything_settles_once(rig, lost, later)
    finally:
        await rig.close()


async def test_another_process_folds_nothing_onto_the_kept_store(
    store: StoreConfig, tmp_path: Path,
) -> None:
    """Any process's fold (the API's, a reconciliation's) that catches up
    first finds the store of the lost timeline and folds it again from the
    log: the log's new movements are all in it, the lost one is not."""
    rig = SettlementRig(store, tmp_path)
    snapshot = StoreSnapshot(store, tmp_path)
    rig, lost = await _lose_a_deposit_and_a_movement(rig, snapshot)
    later: list[UUID] = []
    other = open_settlement_store(rig.ledger.app.recorder)
    try:
        _write(rig, lost.account, WRITTEN, later)
        assert SettlementFold(rig.ledger.app, other).catch_up() == rig.ledger.app.event_log.head()
        assert set(rig.store.movements(later)) == set(later)
        assert rig.store.submission(lost.movement_signature) is None
        with pytest.raises(ChainAheadOfLog, match=lost.movement_signature):
            await rig.settle()
    finally:
        other.close()
        await rig.close()


async def test_a_store_folded_again_under_a_running_settler_is_looked_up_again(
    store: StoreConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A settler that already looked takes a rebuild of the store by any
    process (found of a lost timeline) as a gap: it looks the chain up
    again before it sends."""
    rig = SettlementRig(store, tmp_path)
    try:
        payer = rig.open_account(funded=FUNDED)
        await rig.settle()
        rig.store.reset(lost_timeline=True)
        SettlementFold(rig.ledger.app, rig.store).catch_up()
        caplog.set_level("INFO", logger="application.settlement.chain_lookup")
        rig.execute(c.TransferFunds(uuid4(), payer, TREASURY_ID, LATER))
        await rig.settle()
        assert "was folded again from the log" in caplog.text
        assert max((await _carried(rig)).values()) == 1
    finally:
        await rig.close()
