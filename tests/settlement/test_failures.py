"""When the chain refuses a movement, the ledger records it failed and
compensates it, and the movements that shared its transaction still settle;
an expired submission is signed again and lands once."""

from __future__ import annotations

import logging
from dataclasses import replace
from uuid import uuid4

import pytest

from application import commands as c
from application.handlers.settlement_steps import compensation_id
from domain.amounts import UNITS_PER_DEAL
from domain.errors import InsufficientBalance, SettlementConflict, TransferNotFound
from domain.reconciliation import UNCOMPENSATED_FAILURE, UNKNOWN_SIGNATURE
from domain.system import TREASURY_ID
from domain.transfer import Transfer
from tests.settlement.conftest import SettlementRig

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


def events_of(rig: SettlementRig, transfer_id) -> list:
    return list(rig.ledger.app.repository.event_store.get(transfer_id))


def submissions(rig: SettlementRig, transfer_id) -> list:
    return [e for e in events_of(rig, transfer_id) if isinstance(e, Transfer.SettlementSubmitted)]


async def freeze_on_chain(rig: SettlementRig, account_id) -> str:
    """An operator freezes the token account: a transaction the ledger did
    not make, which reconciliation reports (and nothing else)."""
    frozen = rig.embedded.freeze_token_account(rig.custody, rig.address(account_id))
    assert frozen.landed is not None
    return frozen.signature


def freeze_before_the_first_send(rig: SettlementRig, account_id) -> list[str]:
    """Frozen after the simulation accepted the transaction, before it is
    sent: the chain refuses it as sent (a movement the simulation refuses
    is signed alone from the start); the freeze's signature, once done."""
    frozen: list[str] = []

    async def freeze(_signed) -> None:
        if not frozen:
            frozen.append(await freeze_on_chain(rig, account_id))

    rig.hooks.before_send = freeze
    return frozen


def only_the_freeze(report, freeze: str) -> bool:
    return not report.mismatches and [
        (f.kind, f.signature) for f in report.unmatched_signatures
    ] == [(UNKNOWN_SIGNATURE, freeze)]


async def test_a_movement_refused_on_chain_is_failed_and_compensated_and_its_batch_settles(
    rig: SettlementRig,
) -> None:
    alice, bob, carol = rig.open_account(DEAL), rig.open_account(), rig.open_account()
    await rig.settle()
    frozen = freeze_before_the_first_send(rig, alice)
    to_bob, to_alice, to_carol = uuid4(), uuid4(), uuid4()
    rig.execute(c.TransferFunds(to_bob, TREASURY_ID, bob, 2 * DEAL))
    rig.execute(c.TransferFunds(to_alice, TREASURY_ID, alice, 3 * DEAL))  # same transaction
    rig.execute(c.TransferFunds(to_carol, TREASURY_ID, carol, 4 * DEAL))

    await rig.settle()
    (freeze,) = frozen

    failed = rig.transfer(to_alice)
    assert failed.settlement_status == "failed" and failed.status == "reversed"
    assert '"Custom":17' in (failed.settlement_error or "")  # the token program's AccountFrozen
    compensation = rig.transfer(compensation_id(to_alice))
    assert compensation.reverses == to_alice and compensation.status == "settled"
    assert compensation.settlement_status == "not_required"
    assert rig.ledger.balance(alice) == DEAL
    await rig.assert_each_settled_once([to_bob, to_carol])
    await rig.assert_chain_matches_ledger()
    kinds = [type(event).__name__ for event in events_of(rig, to_alice)]
    assert kinds.count("SettlementSubmitted") == 2  # with bob's, then alone
    assert kinds[-3:] == ["SettlementSubmitted", "SettlementFailed", "Reversed"]
    assert "SettlementRejected" in kinds
    assert only_the_freeze(await rig.reconcile(), freeze)
    # the settler asked for the failure and the compensation, and says so
    settler_steps = events_of(rig, to_alice)[-2:] + events_of(rig, compensation_id(to_alice))
    assert {(e.requested_by, e.request_id) for e in settler_steps} == {("system:settler", None)}


async def test_a_refused_transaction_in_flight_with_others_fails_only_its_movement(
    store, tmp_path,
) -> None:
    """Transactions in flight together resolve one by one: the refused one
    fails and compensates exactly the movement it carried; the others settle."""
    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        dave, erin, frank = (rig.open_account(DEAL) for _ in range(3))
        bob, alice, carol = rig.open_account(DEAL), rig.open_account(DEAL), rig.open_account(DEAL)
        await rig.settle()
        freeze = await freeze_on_chain(rig, alice)
        to_bob, to_alice, to_carol = uuid4(), uuid4(), uuid4()
        rig.execute(c.TransferFunds(to_bob, dave, bob, DEAL // 2))
        rig.execute(c.TransferFunds(to_alice, erin, alice, DEAL // 2))
        rig.execute(c.TransferFunds(to_carol, frank, carol, DEAL // 2))
        recorded: list[tuple] = []
        rig.hooks.before_send = lambda s: recorded.append(s.transfer_ids)
        await rig.settle()
        assert recorded[:3] == [(to_bob,), (to_alice,), (to_carol,)]  # one round, in flight
        failed = rig.transfer(to_alice)
        assert failed.settlement_status == "failed" and failed.status == "reversed"
        assert [type(e).__name__ for e in events_of(rig, to_alice)].count(
            "SettlementSubmitted") == 1
        await rig.assert_each_settled_once([to_bob, to_carol])
        await rig.assert_chain_matches_ledger()
        assert only_the_freeze(await rig.reconcile(), freeze)
    finally:
        await rig.close()


async def test_a_rejected_submission_is_never_sent_again(rig: SettlementRig) -> None:
    alice, bob = rig.open_account(DEAL), rig.open_account()
    await rig.settle()
    freeze_before_the_first_send(rig, alice)
    first, second = uuid4(), uuid4()
    rig.execute(c.TransferFunds(first, TREASURY_ID, alice, DEAL))
    rig.execute(c.TransferFunds(second, TREASURY_ID, bob, DEAL))
    await rig.settle()
    rejected = next(
        event.signature for event in events_of(rig, first)
        if type(event).__name__ == "SettlementRejected"
    )

    rig.embedded.set_account(  # unfrozen behind the settler's back...
        rig.address(alice), rig.embedded.get_account(rig.address(bob))
    )
    await rig.restart()
    await rig.settle()

    statuses = await rig.chain.signature_statuses([rejected])
    assert statuses[rejected] is None  # ...and still the rejected transaction never landed
    await rig.assert_each_settled_once([second])


async def test_a_compensation_the_ledger_refuses_is_recorded_and_reported(
    rig: SettlementRig, caplog: pytest.LogCaptureFixture,
) -> None:
    """Alice spent, in the ledger, tokens whose chain leg then failed: the
    reversal would overdraw her, so it is blocked, logged and reported
    until an admin retries it."""
    alice, bob = rig.open_account(DEAL), rig.open_account()
    await rig.settle()
    freeze = await freeze_on_chain(rig, alice)
    incoming, spent = uuid4(), uuid4()
    rig.execute(c.TransferFunds(incoming, TREASURY_ID, alice, 10 * DEAL))
    rig.execute(c.TransferFunds(spent, alice, bob, 10 * DEAL))

    with caplog.at_level(logging.ERROR, logger="application.settlement.process"):
        await rig.settle()

    blocked = rig.transfer(incoming)
    assert blocked.status == "failed" and blocked.compensation_blocked is not None
    assert "available balance" in blocked.compensation_blocked
    assert any(str(incoming) in record.getMessage() for record in caplog.records)
    assert rig.transfer(spent).status == "reversed"  # alice cannot send on chain either
    report = await rig.reconcile()
    assert [(f.kind, f.transfer_id) for f in report.mismatches] == [
        (UNCOMPENSATED_FAILURE, incoming)
    ]
    assert [f.signature for f in report.unmatched_signatures] == [freeze]

    posted = rig.execute(c.RetryCompensation(incoming))  # the spend came back: now it goes
    again = rig.execute(c.RetryCompensation(incoming))  # a repeat: the first answer exactly
    assert again.replayed and again == replace(posted, replayed=True)

    assert rig.transfer(incoming).status == "reversed"
    assert rig.ledger.balance(alice) == DEAL
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile()).clean  # the freeze was reported by the run before


async def test_retrying_a_compensation_that_still_cannot_post_says_why(
    rig: SettlementRig,
) -> None:
    alice, bob = rig.open_account(DEAL), rig.open_account()
    await rig.settle()
    await freeze_on_chain(rig, alice)
    incoming = uuid4()
    rig.execute(c.TransferFunds(incoming, TREASURY_ID, alice, 10 * DEAL))
    rig.execute(c.TransferFunds(uuid4(), alice, bob, 10 * DEAL))
    rig.execute(c.FreezeAccount(bob))  # bob's compensation to alice cannot post now
    await rig.settle()

    with pytest.raises(InsufficientBalance):
        rig.execute(c.RetryCompensation(incoming))
    with pytest.raises(TransferNotFound):
        rig.execute(c.RetryCompensation(uuid4()))
    with pytest.raises(SettlementConflict):  # settled: nothing to compensate
        rig.execute(c.RetryCompensation(next(iter(rig.store.settled_after(0, 1))).transfer_ids[0]))
    assert rig.transfer(incoming).status == "failed"


async def test_an_expired_submission_is_signed_again_and_settles_once(rig: SettlementRig) -> None:
    alice = rig.open_account()
    await rig.settle()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, 5 * DEAL))
    rig.embedded.drop_next_transactions(1)
    sends: list[str] = []

    def lose_it(signed) -> None:  # the first send is dropped; then its blockhash expires
        sends.append(signed.signature)
        if len(sends) == 1:
            rig.embedded.expire_blockhash()

    rig.hooks.after_send = lose_it
    await rig.settle()

    submitted = submissions(rig, transfer_id)
    assert len(submitted) == 2
    assert submitted[1].supersedes == submitted[0].signature
    assert rig.transfer(transfer_id).signature == submitted[1].signature
    assert (await rig.chain.signature_statuses([submitted[0].signature]))[
        submitted[0].signature
    ] is None
    await rig.assert_each_settled_once([transfer_id])
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile()).clean


async def test_a_dropped_send_is_resent_with_the_same_signature(rig: SettlementRig) -> None:
    alice = rig.open_account()
    await rig.settle()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, 5 * DEAL))
    rig.embedded.drop_next_transactions(1)

    await rig.settle()

    submitted = submissions(rig, transfer_id)
    assert len(submitted) == 1
    await rig.assert_each_settled_once([transfer_id])


async def test_one_lagging_status_answer_past_expiry_does_not_sign_twice(
    rig: SettlementRig,
) -> None:
    """The transaction landed, then its blockhash expired, and one status
    answer (a node behind) does not know it yet: signing again then would
    put the movement on chain twice."""
    alice = rig.open_account()
    await rig.settle()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, 5 * DEAL))
    lagging = {"answers": 0}
    real_statuses = rig.chain.signature_statuses

    async def behind_once(signatures):
        statuses = await real_statuses(signatures)
        if lagging["answers"] == 0:
            lagging["answers"] += 1
            return dict.fromkeys(signatures)
        return statuses

    def land_then_expire(signed) -> None:
        rig.embedded.expire_blockhash()
        rig.chain.signature_statuses = behind_once  # type: ignore[method-assign]

    rig.hooks.after_send = land_then_expire
    await rig.settle()

    assert lagging["answers"] == 1
    assert len(submissions(rig, transfer_id)) == 1
    await rig.assert_each_settled_once([transfer_id])
    await rig.assert_chain_matches_ledger()
