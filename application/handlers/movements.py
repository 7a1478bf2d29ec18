"""Movements: transfers, batches, allowance transfers, fees, rewards, mint,
burn and reversals. All of them are one double-entry posting plus one
Transfer aggregate, recorded by ``record_movement``."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from application import commands as c
from application.conflicts import different_request
from application.handlers.expiry import learn_hold_expiries, release_expired_holds
from application.handlers.session import AggregateSession
from application.outcomes import BatchItemResult, BatchRecorded, MovementRecorded
from application.references import references_of
from domain.amounts import check_amount
from domain.errors import InvalidRequest, LedgerError, TransferNotFound
from domain.movements import BURN, FEE, MINT, REVERSAL, REWARD, TRANSFER, check_movement, move
from domain.pricing import PriceSchedule, check_service_type
from domain.system import ISSUANCE_ID, PRICE_SCHEDULE_ID, REWARDS_ID, TREASURY_ID
from domain.transfer import Transfer


class BatchAborted(LedgerError):
    """An atomic batch stopped at its first failing item; nothing applied."""

    def __init__(self, index: int, error: LedgerError) -> None:
        super().__init__(f"item {index} failed: {error.message}")
        self.code = error.code  # type: ignore[misc]
        self.index = index
        self.error = error


def movement_outcome(transfer: Transfer, *, replayed: bool = False) -> MovementRecorded:
    """What recording a posted movement answered: its status then (not now:
    settlement or a reversal may have moved it on), its amount and balances
    as recorded (they never change after) and the recorded event."""
    return MovementRecorded(
        transfer_id=transfer.id, kind=transfer.kind, status=transfer.recorded_status,
        amount=transfer.posted_amount, source=transfer.source,
        destination=transfer.destination, source_balance=transfer.source_balance_after,
        destination_balance=transfer.destination_balance_after, replayed=replayed,
        answered_by=((transfer.id, 1),),
    )


def replay(transfer: Transfer, command: c.Command, session: AggregateSession) -> MovementRecorded:
    """Answer a repeated command with its first outcome, or refuse a
    different request that reuses the id, naming what differs."""
    check_same_request(transfer, command)
    session.set_primary(transfer.id)
    return movement_outcome(transfer, replayed=True)


def check_same_request(transfer: Transfer, command: c.Command) -> None:
    if transfer.fingerprint != command.fingerprint():
        raise different_request(command, transfer)


def record_movement(
    session: AggregateSession,
    command: c.Command,
    *,
    transfer_id: UUID,
    kind: str,
    source_id: UUID,
    destination_id: UUID,
    amount: int,
    reason: str,
    now: datetime,
    spender: UUID | None = None,
    reverses: UUID | None = None,
    settles_on_chain: bool = True,
    adjusts: UUID | None = None,
    reward_type: str | None = None,
    address: str | None = None,
    returns_finding: UUID | None = None,
    token_account: str | None = None,
) -> MovementRecorded:
    existing = session.existing_transfer(transfer_id, command.id_field)
    if existing is not None:
        return replay(existing, command, session)
    references = references_of(command)  # checked before anything moves
    source = session.account(source_id)
    destination = session.account(destination_id)
    spending = None if spender is None else session.account(spender)
    learn_hold_expiries(source, session)
    check_movement(source, destination, amount, kind, now, spending)
    if spending is not None:
        source.check_allowance(spending.id, amount)
    release_expired_holds(source, session, now)
    if spending is not None:
        source.spend_allowance(spending, transfer_id, amount, now)
    posting = move(
        source, destination, transfer_id=transfer_id, amount=amount, kind=kind,
        reason=reason, now=now,
    )
    transfer = Transfer.record(
        transfer_id, kind=kind, source=source_id, destination=destination_id, amount=amount,
        reason=reason, fingerprint=command.fingerprint(),
        source_balance_after=posting.source_balance_after,
        destination_balance_after=posting.destination_balance_after, now=now,
        spender=spender, reverses=reverses, settles_on_chain=settles_on_chain, adjusts=adjusts,
        reward_type=reward_type, references=references, address=address,
        returns_finding=returns_finding, token_account=token_account,
    )
    session.add(transfer, primary=True)
    return movement_outcome(transfer)


def transfer_funds(
    command: c.TransferFunds, session: AggregateSession, now: datetime
) -> MovementRecorded:
    return record_movement(
        session, command, transfer_id=command.transfer_id,
        kind=TRANSFER, source_id=command.source, destination_id=command.destination,
        amount=check_amount(command.amount), reason=c.check_reason(command.reason), now=now,
    )


def transfer_from(
    command: c.TransferFrom, session: AggregateSession, now: datetime
) -> MovementRecorded:
    if command.spender == command.source:
        raise InvalidRequest("the spender is the owner; use an ordinary transfer")
    return record_movement(
        session, command, transfer_id=command.transfer_id,
        kind=TRANSFER, source_id=command.source, destination_id=command.destination,
        amount=check_amount(command.amount), reason=c.check_reason(command.reason), now=now,
        spender=command.spender,
    )


def transfer_batch(
    command: c.TransferBatch, session: AggregateSession, now: datetime
) -> BatchRecorded:
    """Non-atomic: each item answers for itself. Atomic: the first failure
    aborts the whole batch; the writer then discards what earlier items did."""
    results = []
    for index, item in enumerate(command.transfers):
        try:
            outcome = _batch_item(item, session, now)
        except LedgerError as error:
            if command.atomic:
                raise BatchAborted(index, error) from error
            results.append(BatchItemResult(item.transfer_id, error=error))
        else:
            results.append(BatchItemResult(item.transfer_id, outcome=outcome))
    session.set_primary(None)
    outcomes = [item.outcome for item in results if item.outcome is not None]
    return BatchRecorded(
        atomic=command.atomic, applied=True, results=tuple(results),
        replayed=len(outcomes) == len(results) and all(o.replayed for o in outcomes),
        answered_by=tuple(ref for outcome in outcomes for ref in outcome.answered_by),
    )


def _batch_item(
    item: c.TransferFunds, session: AggregateSession, now: datetime
) -> MovementRecorded:
    try:
        return transfer_funds(item, session, now)
    except LedgerError:
        stored = session.stored_if_assumed_new(item.transfer_id)
        if not isinstance(stored, Transfer):
            raise
        return replay(stored, item, session)


def charge_fee(command: c.ChargeFee, session: AggregateSession, now: datetime) -> MovementRecorded:
    service_type = check_service_type(command.service_type)
    existing = session.existing_transfer(command.charge_id, command.id_field)
    if existing is not None:
        return replay(existing, command, session)
    price = price_schedule(session).price_at(service_type, now)
    return record_movement(
        session, command, transfer_id=command.charge_id, kind=FEE,
        source_id=command.account_id, destination_id=TREASURY_ID, amount=price,
        reason=service_type, now=now,
    )


def distribute_reward(
    command: c.DistributeReward, session: AggregateSession, now: datetime
) -> MovementRecorded:
    reward_type = c.check_reason(command.reward_type, name="reward_type")
    if not reward_type:
        raise InvalidRequest("reward_type must not be empty")
    return record_movement(
        session, command, transfer_id=command.reward_id, kind=REWARD,
        source_id=REWARDS_ID, destination_id=command.account_id,
        amount=check_amount(command.amount), reason=reward_type, now=now,
        reward_type=reward_type,
    )


def mint(command: c.Mint, session: AggregateSession, now: datetime) -> MovementRecorded:
    return record_movement(
        session, command, transfer_id=command.transfer_id, kind=MINT,
        source_id=ISSUANCE_ID, destination_id=command.destination,
        amount=check_amount(command.amount), reason=c.check_reason(command.reason), now=now,
    )


def burn(command: c.Burn, session: AggregateSession, now: datetime) -> MovementRecorded:
    return record_movement(
        session, command, transfer_id=command.transfer_id, kind=BURN,
        source_id=command.source, destination_id=ISSUANCE_ID,
        amount=check_amount(command.amount), reason=c.check_reason(command.reason), now=now,
    )


def reverse_transfer(
    command: c.ReverseTransfer, session: AggregateSession, now: datetime
) -> MovementRecorded:
    """Undo a movement with a new one in the opposite direction; the
    original is marked reversed in the same atomic step."""
    reason = c.check_reason(command.reason)
    existing = session.existing_transfer(command.reversal_id, command.id_field)
    if existing is not None:
        return replay(existing, command, session)
    original = session.get(command.transfer_id)
    if not isinstance(original, Transfer):  # absent, or the id of an account, a wallet...
        raise TransferNotFound(f"transfer {command.transfer_id} does not exist")
    original.check_reversible(compensation=not command.settles_on_chain)
    reverted = reverted_by_compensation(original, session)
    outcome = record_movement(
        session, command, transfer_id=command.reversal_id,
        kind=REVERSAL, source_id=original.destination, destination_id=original.source,
        amount=original.posted_amount, reason=reason, now=now, reverses=original.id,
        settles_on_chain=command.settles_on_chain,
    )
    original.mark_reversed(command.reversal_id, now, compensation=not command.settles_on_chain)
    if reverted is not None:
        reverted.undo_reversal(original.id, now)
    return outcome


def reverted_by_compensation(reversal: Transfer, session: AggregateSession) -> Transfer | None:
    """The movement a reversal undid, when the reversal is what is being
    reversed (its compensation, after it failed on chain): that movement
    stands again. Checked before anything changes."""
    if reversal.kind != REVERSAL or reversal.reverses is None:
        return None
    original = session.get_typed(reversal.reverses, Transfer)
    if original is not None:
        original.check_reversal_undoable(reversal.id)
    return original


def price_schedule(session: AggregateSession) -> PriceSchedule:
    schedule = session.get_typed(PRICE_SCHEDULE_ID, PriceSchedule)
    if schedule is None:
        raise InvalidRequest("the ledger has no price schedule yet; run genesis first")
    return schedule
