"""Settlement steps: the settlement process records each of them here, so
the log says, before anything is sent, what may land, and afterwards what
did. Every step is a compare-and-set on the transfers' submission in force
(``Transfer.check_submittable`` / ``check_outcome_for``) and a repeat of a
step already recorded changes nothing."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from application import commands as c
from application.handlers.movements import movement_outcome, reverse_transfer
from application.handlers.session import AggregateSession
from application.outcomes import MovementRecorded, SettlementStep
from domain.errors import LedgerError, SettlementConflict, TransferNotFound
from domain.movements import REVERSAL
from domain.reconciliation import Finding
from domain.system import GENESIS_MINT_ID, deposit_return_id, derived_id, legacy_derived_id
from domain.transfer import (
    SETTLED,
    SETTLEMENT_FAILED,
    SETTLEMENT_QUEUED,
    SETTLEMENT_SUBMITTED,
    Transfer,
)

COMPENSATION = "compensation"


def compensation_id(transfer_id: UUID) -> UUID:
    """The id of the reversal that compensates a failed settlement (a ledger
    id, which no client may choose)."""
    return derived_id(COMPENSATION, transfer_id)


def is_compensation(reversal_id: UUID, transfer_id: UUID) -> bool:
    """Whether ``reversal_id`` is the compensation of ``transfer_id``, where
    it is derived now or was derived before ledger ids were reserved."""
    return reversal_id in (
        compensation_id(transfer_id), legacy_derived_id(COMPENSATION, transfer_id))


def record_submission(
    command: c.RecordSubmission, session: AggregateSession, now: datetime
) -> SettlementStep:
    c.check_transfer_ids(command.transfer_ids)
    signature = c.check_signature(command.signature)
    transfers = _transfers(session, command.transfer_ids)
    if all(transfer.is_submitted_as(signature) for transfer in transfers):
        return _step(session, command, transfers, SETTLEMENT_SUBMITTED, replayed=True)
    for transfer in transfers:
        transfer.check_submittable(command.supersedes)
    for transfer in transfers:
        transfer.submit_settlement(
            signature, command.last_valid_block_height, now,
            transaction=command.transaction, supersedes=command.supersedes,
        )
    return _step(session, command, transfers, SETTLEMENT_SUBMITTED)


def mark_settled(
    command: c.MarkSettled, session: AggregateSession, now: datetime
) -> SettlementStep:
    c.check_transfer_ids(command.transfer_ids)
    transfers = _transfers(session, command.transfer_ids)
    if all(_has(transfer, SETTLED, command.signature) for transfer in transfers):
        return _step(session, command, transfers, SETTLED, replayed=True)
    for transfer in transfers:
        transfer.check_outcome_for(command.signature)
    for transfer in transfers:
        transfer.settle(command.signature, command.slot, now)
    return _step(session, command, transfers, SETTLED)


def mark_rejected(
    command: c.MarkSettlementRejected, session: AggregateSession, now: datetime
) -> SettlementStep:
    """Only the transfers still in flight as this submission go back to
    waiting; one that has moved on (a repeat of this step) is left alone."""
    c.check_transfer_ids(command.transfer_ids)
    transfers = _transfers(session, command.transfer_ids)
    in_flight = [t for t in transfers if t.is_submitted_as(command.signature)]
    for transfer in transfers:
        if transfer.signature == command.signature and transfer not in in_flight:
            raise SettlementConflict(
                f"transfer {transfer.id} has an outcome for {command.signature}; not rejected"
            )
    error = c.chain_error_text(command.error)
    for transfer in in_flight:
        transfer.reject_settlement(command.signature, error, now)
    return _step(session, command, transfers, SETTLEMENT_QUEUED, replayed=not in_flight)


def mark_failed(
    command: c.MarkSettlementFailed, session: AggregateSession, now: datetime
) -> SettlementStep:
    """Failed and compensated in one save. A compensation the ledger refuses
    is recorded as blocked (``Transfer.CompensationBlocked``) rather than
    failing the step: the failure itself must never be lost."""
    c.check_transfer_ids(command.transfer_ids)
    transfers = _transfers(session, command.transfer_ids)
    for transfer in transfers:
        if not _has(transfer, SETTLEMENT_FAILED, command.signature):
            transfer.check_outcome_for(command.signature)
    error = c.chain_error_text(command.error)
    changed = False
    compensations: list[UUID] = []
    blocked: list[tuple[UUID, str]] = []
    for transfer in transfers:
        if transfer.is_submitted_as(command.signature):
            transfer.fail_settlement(command.signature, error, now)
            changed = True
        if transfer.reversed_by is None and transfer.compensation_blocked is None:
            changed = True
            refusal = _compensate(transfer, error, session, now)
            if refusal is not None:
                blocked.append((transfer.id, refusal))
        if transfer.reversed_by is not None:
            compensations.append(transfer.reversed_by)
    session.set_primary(transfers[-1].id)
    return SettlementStep(
        signature=command.signature, transfer_ids=command.transfer_ids, status=SETTLEMENT_FAILED,
        compensations=tuple(compensations), blocked=tuple(blocked), replayed=not changed,
    )


def record_genesis_settlement(
    command: c.RecordGenesisSettlement, session: AggregateSession, now: datetime
) -> SettlementStep:
    signature = c.check_signature(command.signature)
    (genesis,) = _transfers(session, (GENESIS_MINT_ID,))
    if _has(genesis, SETTLED, signature):
        return _step(session, command, [genesis], SETTLED, replayed=True)
    genesis.settle_without_submission(signature, command.slot, now)
    return _step(session, command, [genesis], SETTLED)


def retry_compensation(
    command: c.RetryCompensation, session: AggregateSession, now: datetime
) -> MovementRecorded:
    (transfer,) = _transfers(session, (command.transfer_id,))
    reversal_id = transfer.reversed_by
    if reversal_id is not None and is_compensation(reversal_id, transfer.id):
        reversal = session.get_typed(reversal_id, Transfer)
        if reversal is not None:
            session.set_primary(reversal.id)
            return movement_outcome(reversal, replayed=True)
    if transfer.settlement_status != SETTLEMENT_FAILED or transfer.compensation_blocked is None:
        raise SettlementConflict(f"transfer {transfer.id} has no blocked compensation to retry")
    error = transfer.settlement_error or ""
    outcome = reverse_transfer(_compensation(transfer, error), session, now)
    _reopen_if_return(transfer, error, session, now)
    _compensate_failed_original(transfer, session, now)
    session.set_primary(outcome.transfer_id)
    return outcome


# Helpers


def _compensation(
    transfer: Transfer, error: str, why: str = "settlement failed on chain",
) -> c.ReverseTransfer:
    return c.ReverseTransfer(
        reversal_id=compensation_id(transfer.id), transfer_id=transfer.id,
        reason=f"compensation: {why}: {error}"[: c.REASON_LENGTH_MAX],
        settles_on_chain=False,
    )


def _compensate(
    transfer: Transfer, error: str, session: AggregateSession, now: datetime
) -> str | None:
    """Post the compensating reversal; its refusal message when refused.
    ``reverse_transfer`` checks everything before it changes anything, so a
    refusal leaves the session as it was."""
    reversal_id = compensation_id(transfer.id)
    try:
        reverse_transfer(_compensation(transfer, error), session, now)
    except LedgerError as refusal:
        transfer.block_compensation(reversal_id, refusal.message, now)
        return refusal.message
    _reopen_if_return(transfer, error, session, now)
    _compensate_failed_original(transfer, session, now)
    return None


def _reopen_if_return(
    transfer: Transfer, error: str, session: AggregateSession, now: datetime,
) -> None:
    """A deposit return (``deposits.return_deposit``) whose withdrawal was
    just compensated: its credit is compensated too, back to the external
    account (the tokens never left the deposit address, and the ledger owes
    no one them), and its finding reopened as an unassigned deposit, as it
    was before the return. Not refusable once the withdrawal's compensation
    was accepted: the same account, not frozen, was just credited the very
    amount this debits, and the credit was settled by its own transaction
    and never reversed (a deposit reverses only by compensation)."""
    if transfer.returns_finding is None:
        return
    finding = session.get_typed(transfer.returns_finding, Finding)
    assert finding is not None and finding.adjusted_by == transfer.id, transfer.id
    credit_id = finding.credit_id()
    assert deposit_return_id(credit_id) == transfer.id, transfer.id
    credit = session.get_typed(credit_id, Transfer)
    assert credit is not None
    reverse_transfer(
        _compensation(credit, error, f"its return {transfer.id} failed on chain"), session, now)
    finding.reopen(transfer.id, now)


def _compensate_failed_original(
    transfer: Transfer, session: AggregateSession, now: datetime
) -> None:
    """A compensated reversal gave its original its effect back; if that
    original failed on chain too (a reversal taken while it was pending,
    before such reversals were refused), it is compensated now as well."""
    if transfer.kind != REVERSAL or transfer.reverses is None:
        return
    original = session.get_typed(transfer.reverses, Transfer)
    if (original is not None and original.settlement_status == SETTLEMENT_FAILED
            and original.reversed_by is None and original.compensation_blocked is None):
        _compensate(original, original.settlement_error or "", session, now)


def _transfers(session: AggregateSession, transfer_ids: tuple[UUID, ...]) -> list[Transfer]:
    transfers = []
    for transfer_id in transfer_ids:
        transfer = session.get_typed(transfer_id, Transfer)
        if transfer is None:
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        transfers.append(transfer)
    return transfers


def _has(transfer: Transfer, status: str, signature: str) -> bool:
    return transfer.settlement_status == status and transfer.signature == signature


def _step(
    session: AggregateSession, command: c.Command, transfers: list[Transfer], status: str,
    *, replayed: bool = False,
) -> SettlementStep:
    session.set_primary(transfers[-1].id)
    return SettlementStep(
        signature=getattr(command, "signature"),  # noqa: B009 - every settlement step has one
        transfer_ids=tuple(transfer.id for transfer in transfers), status=status,
        replayed=replayed,
    )
