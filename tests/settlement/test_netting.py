"""Netting (DEALS_SETTLEMENT_NETTING_WINDOW_S): many small transfers between
the same two token accounts settle as one transfer_checked of their sum,
every one named in the memo and recorded settled with that signature; the
reconciliation proves the sum, and finds a wrong one, a missing movement
and an extra one; crashes keep exactly-once; netting off changes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from solders.transaction import Transaction

from application import commands as c
from application.settlement.chain_port import ChainMovement, ChainPort, SignedSubmission
from domain.amounts import UNITS_PER_DEAL
from domain.reconciliation import AMOUNT_MISMATCH, BALANCE_MISMATCH, MEMO_MISMATCH
from interface.chain import transactions as tx
from tests.settlement.conftest import SettlementRig, SimulatedCrash
from tests.settlement.test_crash import CRASH_POINTS, crash_at, settle_through_crashes
from tests.support.stores import StoreConfig, sqlite_store

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL
SMALL_TRANSFERS = 20


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["litesvm", "rpc"])
async def netting_rig(request: Any, store: StoreConfig, tmp_path: Path
                      ) -> AsyncIterator[SettlementRig]:
    if request.param == "rpc" and store.kind != "sqlite":
        pytest.skip("the JSON-RPC adapter is covered on one store")
    rig = SettlementRig(store, tmp_path, chain_kind=request.param, netting_window_s=0.0)
    try:
        yield rig
    finally:
        await rig.close()


async def funded_pair(rig: SettlementRig) -> tuple[UUID, UUID]:
    alice, bob = rig.open_account(100 * DEAL), rig.open_account(DEAL)
    await rig.settle()
    return alice, bob


def small_transfers(rig: SettlementRig, source: UUID, destination: UUID,
                    count: int = SMALL_TRANSFERS) -> list[UUID]:
    transfer_ids = [uuid4() for _ in range(count)]
    for index, transfer_id in enumerate(transfer_ids):
        rig.execute(c.TransferFunds(transfer_id, source, destination, (index + 1) * 1000))
    return transfer_ids


def signatures(rig: SettlementRig, transfer_ids: Sequence[UUID]) -> set[str | None]:
    return {rig.transfer(transfer_id).signature for transfer_id in transfer_ids}


def token_instructions(rig: SettlementRig, signature: str) -> int:
    submission = rig.store.submission(signature)
    assert submission is not None and submission.transaction is not None
    message = Transaction.from_bytes(submission.transaction).message
    keys = message.account_keys
    return sum(keys[instruction.program_id_index] == tx.TOKEN_PROGRAM_ID
               for instruction in message.instructions)


async def test_small_transfers_between_two_accounts_settle_as_one_transfer(
    netting_rig: SettlementRig,
) -> None:
    rig = netting_rig
    alice, bob = await funded_pair(rig)
    transfer_ids = small_transfers(rig, alice, bob)

    await rig.settle()

    (signature,) = signatures(rig, transfer_ids)
    assert signature is not None and token_instructions(rig, signature) == 1
    landed = await rig.chain.transaction(signature)
    assert landed is not None and landed.memo_transfer_ids == tuple(transfer_ids)
    moved = sum((index + 1) * 1000 for index in range(SMALL_TRANSFERS))
    assert landed.token_deltas == {rig.chain.token_account_address(alice): -moved,
                                   rig.chain.token_account_address(bob): moved}
    await rig.assert_each_settled_once(transfer_ids)
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile(full=True)).clean


async def test_opposite_directions_keep_their_own_transfers(tmp_path: Path) -> None:
    """A->B and B->A are two sums, never one difference."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=0.0)
    try:
        alice, bob = await funded_pair(rig)
        there = small_transfers(rig, alice, bob, 3)
        back = small_transfers(rig, bob, alice, 3)
        await rig.settle()
        (signature,) = signatures(rig, there + back)
        assert signature is not None and token_instructions(rig, signature) == 2
        await rig.assert_each_settled_once(there + back)
        await rig.assert_chain_matches_ledger()
        assert (await rig.reconcile(full=True)).clean
    finally:
        await rig.close()


async def test_netting_off_keeps_one_instruction_a_movement(rig: SettlementRig) -> None:
    alice, bob = await funded_pair(rig)
    transfer_ids = small_transfers(rig, alice, bob)

    await rig.settle()

    found = signatures(rig, transfer_ids)
    assert len(found) == -(-SMALL_TRANSFERS // tx.MOVEMENTS_PER_TRANSACTION_MAX)
    assert sum(token_instructions(rig, str(signature)) for signature in found) == SMALL_TRANSFERS
    assert (await rig.reconcile(full=True)).clean


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_at_each_step_settles_each_netted_movement_once(
    store: StoreConfig, tmp_path: Path, point: str,
) -> None:
    rig = SettlementRig(store, tmp_path, netting_window_s=0.0)
    try:
        alice, bob = await funded_pair(rig)
        transfer_ids = small_transfers(rig, alice, bob)
        crashed = crash_at(rig, point, times=3)

        assert await settle_through_crashes(rig) == 3 and len(crashed) == 3

        assert len(signatures(rig, transfer_ids)) == 1
        await rig.assert_each_settled_once(transfer_ids)
        await rig.assert_chain_matches_ledger()
        assert (await rig.reconcile(full=True)).clean
    finally:
        await rig.close()


async def test_the_window_holds_the_queue_until_the_oldest_waited_it(tmp_path: Path) -> None:
    clock = FakeClock()
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=5.0, clock=clock)
    try:
        alice, bob = await funded_pair(rig)  # run_until_idle: the window is not waited
        first = small_transfers(rig, alice, bob, 2)
        assert await rig.process.step() is False
        clock.now += 4.9
        later = small_transfers(rig, alice, bob, 3)
        assert await rig.process.step() is False
        assert {rig.transfer(t).settlement_status for t in first + later} == {"queued"}
        clock.now += 0.1
        assert await rig.process.step() is True
        (signature,) = signatures(rig, first + later)
        assert signature is not None and token_instructions(rig, signature) == 1
        await rig.assert_each_settled_once(first + later)
    finally:
        await rig.close()


async def test_a_transactions_worth_does_not_wait_for_the_window(tmp_path: Path) -> None:
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=3600.0,
                        clock=FakeClock())
    try:
        alice, bob = await funded_pair(rig)
        transfer_ids = small_transfers(rig, alice, bob, rig.process.batch_movements)
        assert await rig.process.step() is True
        assert len(signatures(rig, transfer_ids)) == 1
        await rig.assert_each_settled_once(transfer_ids)
    finally:
        await rig.close()


class TamperingChain:
    """Signs something other than the movements it is given, and answers
    as if it had not: a settler's bug, or a tampered signer."""

    def __init__(self, chain: ChainPort, tamper: str) -> None:
        self._chain, self._tamper = chain, tamper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chain, name)

    async def sign_movements(self, movements: Sequence[ChainMovement], *, whole: bool = False,
                             net: bool = False) -> SignedSubmission:
        named = tuple(movement.transfer_id for movement in movements)
        signed = list(movements)
        if self._tamper == "sum":
            signed[-1] = dataclasses.replace(signed[-1], amount=signed[-1].amount + 1)
        elif self._tamper == "missing":
            signed = signed[:-1]
        else:
            signed.append(dataclasses.replace(signed[-1], transfer_id=uuid4()))
        submission = await self._chain.sign_movements(signed, whole=True, net=net)
        return dataclasses.replace(submission, transfer_ids=named)


@pytest.mark.parametrize(("tamper", "kind"), [
    ("sum", AMOUNT_MISMATCH), ("missing", MEMO_MISMATCH), ("extra", MEMO_MISMATCH),
])
async def test_reconciliation_finds_a_wrong_sum_a_missing_and_an_extra_movement(
    tmp_path: Path, tamper: str, kind: str,
) -> None:
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=0.0)
    try:
        alice, bob = await funded_pair(rig)
        transfer_ids = small_transfers(rig, alice, bob, 5)
        rig.chain = TamperingChain(rig.chain, tamper)  # type: ignore[assignment]
        rig.process = rig._new_process()
        await rig.settle()
        assert len(signatures(rig, transfer_ids)) == 1

        report = await rig.reconcile(full=True)

        kinds = {finding.kind for finding in report.mismatches + report.unmatched_signatures}
        assert kind in kinds and BALANCE_MISMATCH in kinds, kinds
    finally:
        await rig.close()


async def test_an_expired_netted_submission_is_signed_again_after_netting_is_turned_off(
    tmp_path: Path,
) -> None:
    """Its movements only fit one transaction netted: the replacement is
    netted too, whatever the setting now says."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=0.0)
    try:
        alice, bob = await funded_pair(rig)
        transfer_ids = small_transfers(rig, alice, bob)
        rig.embedded.drop_next_transactions(1)

        def expire_and_crash(signed: SignedSubmission) -> None:
            rig.embedded.expire_blockhash()
            raise SimulatedCrash("after_send")

        rig.hooks.after_send = expire_and_crash
        with pytest.raises(SimulatedCrash):
            await rig.settle()
        rig.hooks.after_send = None
        rig.config = dataclasses.replace(rig.config, netting_window_s=None)
        await rig.restart()
        await rig.settle()

        (signature,) = signatures(rig, transfer_ids)
        assert signature is not None and token_instructions(rig, signature) == 1
        await rig.assert_each_settled_once(transfer_ids)
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()


async def test_a_refused_netted_transfer_sends_each_movement_back_to_fail_alone(
    tmp_path: Path,
) -> None:
    """The chain refuses the sum (the destination is frozen): each of its
    movements is signed alone, fails and is compensated; the transaction's
    other movements settle."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, netting_window_s=0.0)
    try:
        alice, bob = await funded_pair(rig)
        carol = rig.open_account()
        await rig.settle()
        frozen = rig.embedded.freeze_token_account(rig.custody, rig.address(bob))
        assert frozen.landed is not None
        to_bob = small_transfers(rig, alice, bob, 3)
        to_carol = small_transfers(rig, alice, carol, 2)

        await rig.settle()

        assert {rig.transfer(t).settlement_status for t in to_bob} == {"failed"}
        assert {rig.transfer(t).status for t in to_bob} == {"reversed"}
        assert len({rig.transfer(t).signature for t in to_bob}) == 3  # each alone
        await rig.assert_each_settled_once(to_carol)
        await rig.assert_chain_matches_ledger()
        report = await rig.reconcile(full=True)
        assert not report.mismatches
        assert [f.signature for f in report.unmatched_signatures] == [frozen.signature]
    finally:
        await rig.close()
