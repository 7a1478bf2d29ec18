"""Given ledger movements of every kind, when the settlement process runs,
then each is mirrored on chain exactly once, in log order, the transfers
read settled with their signature and slot, and reconciliation is clean.
On SQLite and PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from domain.amounts import INITIAL_SUPPLY, UNITS_PER_DEAL
from domain.system import GENESIS_MINT_ID, GENESIS_REWARDS_FUNDING_ID, REWARDS_ID, TREASURY_ID
from interface.chain.transactions import PACKET_DATA_SIZE
from tests.settlement.conftest import SettlementRig

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


async def test_every_kind_of_movement_settles_and_reconciles_clean(rig: SettlementRig) -> None:
    alice, bob, agent = rig.open_account(100 * DEAL), rig.open_account(), rig.open_account()
    moved = [
        c.TransferFunds(uuid4(), alice, bob, 7 * DEAL, "rent"),
        c.ChargeFee(uuid4(), bob, "search"),
        c.DistributeReward(uuid4(), bob, "referral", 3 * DEAL),
        c.Mint(uuid4(), alice, 50 * DEAL),
        c.Burn(uuid4(), alice, 20 * DEAL),
        c.SetAllowance(alice, agent, 5 * DEAL),
        c.TransferFrom(uuid4(), agent, alice, bob, 4 * DEAL),
    ]
    transfer_ids = [command.command_id for command in moved]
    for command in moved:
        rig.execute(command)
    captured, voided = uuid4(), uuid4()
    rig.execute(c.PlaceHold(captured, bob, amount=2 * DEAL))
    rig.execute(c.PlaceHold(voided, bob, amount=DEAL))
    rig.execute(c.CaptureHold(captured, amount=DEAL + 1))
    rig.execute(c.VoidHold(voided))

    await rig.settle()

    settled = [tid for tid in transfer_ids if tid is not None] + [captured]
    for transfer_id in [*settled, GENESIS_MINT_ID, GENESIS_REWARDS_FUNDING_ID]:
        transfer = rig.transfer(transfer_id)
        assert transfer.status == "settled", transfer_id
        assert transfer.signature is not None and transfer.slot is not None
    assert rig.transfer(voided).settlement_status == "not_required"  # nothing ever moved
    await rig.assert_chain_matches_ledger()
    assert await rig.chain_balance(bob) == 7 * DEAL - DEAL // 10 + 3 * DEAL + 4 * DEAL - DEAL - 1
    await rig.assert_each_settled_once([tid for tid in settled if tid is not None])
    report = await rig.reconcile()
    assert report.clean, report
    assert report.checked_accounts == len(rig.accounts) - 1  # the agent only spends for alice
    assert report.checked_signatures > len(settled)


async def test_the_genesis_mint_is_settled_by_the_chains_genesis_not_twice(
    rig: SettlementRig,
) -> None:
    await rig.settle()
    await rig.settle()

    genesis = rig.transfer(GENESIS_MINT_ID)
    assert genesis.status == "settled"
    landed = await rig.chain.transaction(genesis.signature)
    assert landed is not None and f"deal-genesis:{TREASURY_ID}" in landed.memos
    assert rig.chain_supply() == INITIAL_SUPPLY
    assert await rig.chain_balance(REWARDS_ID) == rig.ledger.balance(REWARDS_ID)
    assert (await rig.reconcile()).clean


async def test_movements_share_transactions_as_many_as_fit(rig: SettlementRig) -> None:
    """Packed by real size: movements to one account (created once) all fit
    one transaction, named by one memo; new accounts on every movement fill
    transactions sooner, and each stays within the packet limit."""
    await rig.settle()
    alice = rig.open_account()
    transfer_ids = [uuid4() for _ in range(4)]
    for transfer_id in transfer_ids:
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
    await rig.settle()
    signatures = {rig.transfer(transfer_id).signature for transfer_id in transfer_ids}
    assert len(signatures) == 1
    landed = await rig.chain.transaction(signatures.pop())
    assert landed is not None and landed.memo_transfer_ids == tuple(transfer_ids)
    assert len(landed.memos) == 1

    funded = [uuid4() for _ in range(6)]
    for transfer_id in funded:
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, rig.open_account(), DEAL))
    await rig.settle()
    by_signature: dict[str, list] = {}
    for transfer_id in funded:
        by_signature.setdefault(rig.transfer(transfer_id).signature, []).append(transfer_id)
    assert 1 < len(by_signature) < len(funded)
    for signature, carried in by_signature.items():
        submitted = rig.store.submission(signature)
        assert submitted is not None and submitted.transaction is not None
        assert len(submitted.transaction) <= PACKET_DATA_SIZE
        assert submitted.transfer_ids == tuple(carried)
    await rig.assert_chain_matches_ledger()


async def test_a_burst_between_two_existing_accounts_settles_in_full_transactions(
    rig: SettlementRig,
) -> None:
    """More movements between one existing pair than the chain's best case
    packs: each transaction carries what the chain packs, never more than
    one settlement command may name, and the whole burst settles (a
    reviewer's 17 stalled the queue when the command named 16)."""
    alice, bob = rig.open_account(100 * DEAL), rig.open_account(DEAL)
    await rig.settle()
    burst = [uuid4() for _ in range(2 * c.SETTLEMENT_TRANSFERS_MAX + 3)]
    for transfer_id in burst:
        rig.execute(c.TransferFunds(transfer_id, alice, bob, 1))
    await rig.settle()
    assert {rig.transfer(transfer_id).settlement_status for transfer_id in burst} == {"settled"}
    carried: dict[str, int] = {}
    for transfer_id in burst:
        signature = rig.transfer(transfer_id).signature
        carried[signature] = carried.get(signature, 0) + 1
    assert max(carried.values()) == min(rig.chain.movements_per_transaction_max,
                                        c.SETTLEMENT_TRANSFERS_MAX)
    await rig.assert_chain_matches_ledger()


async def test_transactions_in_flight_together_touch_disjoint_accounts(store, tmp_path) -> None:
    """Several transactions are recorded (write-ahead) before any is sent,
    and a round stops at the first movement on an account another of them
    touches: each account's history on chain keeps the ledger's order."""
    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        a, b, c_, d, e = (rig.open_account(funded=DEAL) for _ in range(5))
        await rig.settle()
        seen: list[tuple[str, tuple]] = []
        rig.hooks.before_record = lambda s: seen.append(("record", s.transfer_ids))
        rig.hooks.before_send = lambda s: seen.append(("send", s.transfer_ids))
        t1, t2, t3, t4 = (uuid4() for _ in range(4))
        rig.execute(c.TransferFunds(t1, a, b, 1))
        rig.execute(c.TransferFunds(t2, c_, d, 1))
        rig.execute(c.TransferFunds(t3, b, e, 1))  # b is t1's: waits for the next round
        rig.execute(c.TransferFunds(t4, a, c_, 1))  # a and c are free again by then
        await rig.settle()
        assert seen == [("record", (t1,)), ("record", (t2,)), ("send", (t1,)), ("send", (t2,)),
                        ("record", (t3,)), ("record", (t4,)), ("send", (t3,)), ("send", (t4,))]
        await rig.assert_each_settled_once([t1, t2, t3, t4])
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()


async def test_a_round_passes_over_busy_accounts_but_never_reorders_one(
    store, tmp_path,
) -> None:
    """A movement on an account the round already writes is passed over and
    later ones fill the round, except those touching an account a passed-over
    movement touches: t3 (c, d) must wait for t2 (b, c), which waits for t1."""
    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        a, b, c_, d, e, f = (rig.open_account(funded=DEAL) for _ in range(6))
        await rig.settle()
        recorded: list[tuple] = []
        rig.hooks.before_record = lambda s: recorded.append(s.transfer_ids)
        t1, t2, t3, t4 = (uuid4() for _ in range(4))
        rig.execute(c.TransferFunds(t1, a, b, 1))
        rig.execute(c.TransferFunds(t2, b, c_, 1))  # b is t1's: passed over
        rig.execute(c.TransferFunds(t3, c_, d, 1))  # c waits for t2: passed over too
        rig.execute(c.TransferFunds(t4, e, f, 1))  # free: fills the first round
        await rig.settle()
        assert recorded == [(t1,), (t4,), (t2,), (t3,)]
        slots = [rig.transfer(t).slot for t in (t1, t2, t3)]
        assert slots == sorted(slots) and len(set(slots)) == 3
        await rig.assert_each_settled_once([t1, t2, t3, t4])
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()


class SendOrder:
    """The command writer, noting what settlement sends it, in order."""

    def __init__(self, writer) -> None:
        self.writer = writer
        self.sent: list[tuple[str, tuple]] = []

    def send(self, command: c.Command, *, authority):
        self.sent.append((command.kind, tuple(command.transfer_ids)))
        return self.writer.send(command, authority=authority)


async def test_a_rounds_outcome_is_recorded_with_the_next_rounds_records(
    store, tmp_path,
) -> None:
    """Round two (t2 shares a with t1) is recorded together with round one's
    confirmation, one group instead of two; the last round's alone, before
    the step ends."""
    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        a, b, c_ = (rig.open_account(funded=DEAL) for _ in range(3))
        await rig.settle()
        rig.process.writer = order = SendOrder(rig.ledger.writer)
        t1, t2 = uuid4(), uuid4()
        rig.execute(c.TransferFunds(t1, a, b, 1))
        rig.execute(c.TransferFunds(t2, a, c_, 1))
        assert await rig.step() is True
        assert order.sent == [("record_submission", (t1,)), ("record_submission", (t2,)),
                              ("mark_settled", (t1,)), ("mark_settled", (t2,))]
        await rig.assert_each_settled_once([t1, t2])
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()


async def test_batching_can_be_turned_off(store, tmp_path) -> None:
    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        alice = rig.open_account()
        transfer_ids = [uuid4() for _ in range(3)]
        for transfer_id in transfer_ids:
            rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
        await rig.settle()
        assert len({rig.transfer(t).signature for t in transfer_ids}) == 3
        await rig.assert_each_settled_once(transfer_ids)
    finally:
        await rig.close()


async def test_an_accounts_chain_history_follows_the_ledgers_order(rig: SettlementRig) -> None:
    """Alice receives and spends the same tokens: settled out of order, her
    token account would go negative and the spend would fail."""
    alice, bob, carol = rig.open_account(), rig.open_account(), rig.open_account()
    chain_of_spends = [
        c.TransferFunds(uuid4(), TREASURY_ID, alice, 5 * DEAL),
        c.TransferFunds(uuid4(), alice, bob, 5 * DEAL),
        c.TransferFunds(uuid4(), bob, carol, 5 * DEAL),
        c.TransferFunds(uuid4(), carol, alice, 5 * DEAL),
        c.Burn(uuid4(), alice, 5 * DEAL),
    ]
    for command in chain_of_spends:
        rig.execute(command)

    await rig.settle()

    for command in chain_of_spends:
        assert rig.transfer(command.transfer_id).status == "settled"
    await rig.assert_chain_matches_ledger()


async def test_nothing_waiting_is_a_step_with_nothing_to_do(rig: SettlementRig) -> None:
    await rig.settle()
    before = rig.ledger.app.event_log.head()
    assert await rig.process.step() is False
    assert rig.ledger.app.event_log.head() == before
