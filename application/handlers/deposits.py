"""Deposits: DEAL a user sent on chain into an account's deposit address
(its custody token account), credited from the external account.

The deposit's own transaction is its settlement, so the credit is recorded
already settled (signature, slot) and never goes to the settlement queue.
Its id is derived from (signature, account, position of the transfer in
the transaction; none for the first, as every id was before positions):
the scan's credit and an admin's assignment of the same deposit share it
(the finding keeps it as its ``transfer_id``), so whichever comes first is
the only one. A deposit's finding, once resolved (credited, assigned or
returned), records that in ``adjusted_by``, so it cannot be resolved a
second way; only a return the chain refused reopens it, and the next
resolution is a movement with ids of its own (``Finding.credit_id``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from application import commands as c
from application.conflicts import fields_differ
from application.handlers.movements import (
    movement_outcome,
    record_movement,
    replay,
)
from application.handlers.session import AggregateSession
from application.handlers.wallets import connected_wallet
from application.outcomes import MovementRecorded
from domain.amounts import check_amount
from domain.errors import FindingNotAdjustable, FindingNotFound, InvalidRequest
from domain.movements import DEPOSIT, TRANSFER, WITHDRAWAL
from domain.reconciliation import Finding
from domain.system import (
    EXTERNAL_ID,
    SYSTEM_ACCOUNTS,
    deposit_finding_id,
    deposit_id,
    deposit_onward_id,
    deposit_return_id,
)
from domain.transfer import CLIENT_STATUS_BY_STATE, SETTLED, Transfer

_SETTLED_STATUS = CLIENT_STATUS_BY_STATE[SETTLED]
SYSTEM_ACCOUNT_IDS = frozenset(SYSTEM_ACCOUNTS.values())


def credit_deposit(
    command: c.CreditDeposit, session: AggregateSession, now: datetime
) -> MovementRecorded:
    """Credit a deposit from a connected wallet; a repeat (a rescan, a crash
    after crediting) answers the credit already made, whoever made it. A
    deposit whose finding a failed return reopened is credited under the
    finding's next credit id (``Finding.credit_id``)."""
    signature = c.check_signature(command.signature)
    position = command.position
    if command.deposit_id != deposit_id(signature, command.account_id, position):
        raise InvalidRequest(
            "deposit_id must be derived from the signature, the account and the position")
    finding = session.get_typed(
        deposit_finding_id(signature, command.account_id, position), Finding)
    credit_id = command.deposit_id if finding is None else finding.credit_id()
    existing = session.existing_transfer(credit_id, command.id_field)
    if existing is not None:
        session.set_primary(existing.id)
        return _outcome(existing, replayed=True)
    if finding is not None and finding.adjusted_by is not None:
        raise FindingNotAdjustable(
            f"deposit {signature} was resolved by {finding.adjusted_by}; not credited")
    owner = command.owner
    wallet = None if owner is None else connected_wallet(session, owner)
    if wallet is None or wallet.account_id != command.account_id:
        raise InvalidRequest(
            f"deposit {signature} came from a token account owned by {owner or 'an unknown owner'}, "
            f"which is not a wallet connected to account {command.account_id}")
    outcome = _credit(session, command, command.account_id, command.amount, signature,
                      command.slot, f"deposit {signature} from {command.source}", now,
                      transfer_id=credit_id)
    if finding is not None:  # recorded while the wallet was not connected
        finding.mark_adjusted(credit_id, command.amount, now)
        session.set_primary(credit_id)
    return outcome


def assign_deposit(
    command: c.AssignDeposit, session: AggregateSession, now: datetime
) -> MovementRecorded:
    """Credit an unassigned deposit's finding to the account that received
    it; one a system account received, on to the user account named. A
    repeat answers the movement that resolved it; another request under the
    finding is a conflict, as for every command (``_check_assigned_as_asked``)."""
    reason = c.check_reason(command.reason)
    finding, resolved = _deposit_finding(command, session, (DEPOSIT, TRANSFER))
    if resolved is not None:
        _check_assigned_as_asked(resolved, command)
        session.set_primary(resolved.id)
        return _outcome(resolved, replayed=True)
    account_id, amount, signature, slot = finding.unassigned_deposit()
    onward = _onward_account(command, account_id)
    credit_id = _uncredited(finding, signature, session)
    text = reason or f"deposit {signature} assigned by finding {finding.id}"
    outcome = _credit(session, command, account_id, amount, signature, slot, text, now,
                      transfer_id=credit_id)
    resolved_by = credit_id
    if onward is not None:
        resolved_by = deposit_onward_id(credit_id)
        outcome = record_movement(
            session, command, transfer_id=resolved_by, kind=TRANSFER, source_id=account_id,
            destination_id=onward, amount=amount, now=now,
            reason=(reason or f"deposit {signature} sent to the {account_id} system "
                    f"account, assigned to {onward}")[:c.REASON_LENGTH_MAX],
        )
    finding.mark_adjusted(resolved_by, amount, now)
    session.set_primary(resolved_by)
    return outcome


def _onward_account(command: c.AssignDeposit, received_by: UUID) -> UUID | None:
    """The user account a system account's deposit goes on to (None: the
    receiving account keeps it); a user account's deposit is its own."""
    wanted = command.account_id
    if wanted is None or wanted == received_by:
        return None
    if received_by not in SYSTEM_ACCOUNT_IDS:
        raise InvalidRequest(
            f"account_id: the deposit was sent to account {received_by}'s deposit address; "
            "it can only be assigned to that account")
    if wanted in SYSTEM_ACCOUNT_IDS:
        raise InvalidRequest("account_id: a deposit is assigned on to a user account")
    return wanted


def return_deposit(
    command: c.ReturnDeposit, session: AggregateSession, now: datetime
) -> MovementRecorded:
    """Credit an unassigned deposit and withdraw it at once to the wallet that
    owns the token account it came from (``Finding.source_owner``), into
    that very token account (``Finding.source``, the withdrawal's
    ``token_account``): nothing is created for it, so a stranger's deposit
    never costs the fee payer rent. The ledger balance is unchanged, the
    custody token account gives the tokens back when the withdrawal settles.
    Answers the withdrawal; a repeat answers it again. Refused (409
    finding_not_adjustable) for a finding already resolved either way or
    whose sender the chain did not name. A return the chain refuses (that
    token account closed, or no DEAL account any more) is compensated,
    credit and all, and reopens the finding (``settlement_steps``)."""
    reason = c.check_reason(command.reason)
    finding, resolved = _deposit_finding(command, session, (WITHDRAWAL,))
    if resolved is not None:
        return replay(resolved, command, session)
    account_id, amount, signature, slot = finding.unassigned_deposit()
    credit_id = _uncredited(finding, signature, session)
    owner, token_account = finding.source_owner, finding.source
    if owner is None or token_account is None:
        raise FindingNotAdjustable(
            f"deposit {signature} came from several owners or one the chain did not name: "
            "there is no one wallet to return it to")
    _credit(session, command, account_id, amount, signature, slot,
            f"deposit {signature} credited to be returned by finding {finding.id}", now,
            transfer_id=credit_id)
    return_id = deposit_return_id(credit_id)
    outcome = record_movement(
        session, command, transfer_id=return_id, kind=WITHDRAWAL, source_id=account_id,
        destination_id=EXTERNAL_ID, amount=amount, now=now, address=owner,
        reason=(reason or f"return of deposit {signature} to {owner}")[:c.REASON_LENGTH_MAX],
        returns_finding=finding.id, token_account=token_account,
    )
    finding.mark_adjusted(return_id, amount, now)
    session.set_primary(return_id)
    return outcome


def _deposit_finding(
    command: c.AssignDeposit | c.ReturnDeposit, session: AggregateSession,
    kinds: tuple[str, ...],
) -> tuple[Finding, Transfer | None]:
    """The finding an assignment or a return names, and the movement of one
    of ``kinds`` that resolved it when one did (the command's repeat)."""
    finding = session.get_typed(command.finding_id, Finding)
    if finding is None:
        raise FindingNotFound(f"finding {command.finding_id} does not exist")
    if finding.adjusted_by is not None:
        existing = session.get_typed(finding.adjusted_by, Transfer)
        if existing is not None and existing.kind in kinds:
            return finding, existing
    return finding, None


def _uncredited(finding: Finding, signature: str, session: AggregateSession) -> UUID:
    """The id the deposit's credit takes now, refused if it is taken."""
    credit_id = finding.credit_id()
    if session.existing_transfer(credit_id) is not None:
        raise FindingNotAdjustable(f"deposit {signature} is already credited as {credit_id}")
    return credit_id


def _check_assigned_as_asked(resolved: Transfer, command: c.AssignDeposit) -> None:
    """A movement an assignment of this finding made answers only the same
    request again (409 idempotency_conflict otherwise, naming the fields
    that differ, as for every command). The assignment stored its reason,
    or a default when none was given, and named no account or the one its
    movement credits, so the request that made it had one of four bodies.
    A credit the scan made (the wallet was connected since) answers any
    assignment."""
    bodies = {c.AssignDeposit(command.finding_id, reason, account).fingerprint(): (reason, account)
              for reason in ("", resolved.reason) for account in (None, resolved.destination)}
    first = bodies.get(resolved.fingerprint)
    if first is None or resolved.fingerprint == command.fingerprint():
        return
    asked = {"reason": command.reason, "account_id": command.account_id}
    differing = [name for name, value in zip(asked, first, strict=True) if asked[name] != value]
    raise fields_differ(c.AssignDeposit.id_field, command.finding_id, differing)


def _credit(
    session: AggregateSession, command: c.Command, account_id: UUID, amount: int,
    signature: str, slot: int, reason: str, now: datetime, *, transfer_id: UUID,
) -> MovementRecorded:
    record_movement(
        session, command, transfer_id=transfer_id, kind=DEPOSIT, source_id=EXTERNAL_ID,
        destination_id=account_id, amount=check_amount(amount), reason=reason[:c.REASON_LENGTH_MAX],
        now=now,
    )
    transfer = session.get_typed(transfer_id, Transfer)
    assert transfer is not None
    transfer.settle_without_submission(signature, slot, now)
    return _outcome(transfer)


def _outcome(transfer: Transfer, *, replayed: bool = False) -> MovementRecorded:
    """A deposit is recorded settled (its own transaction landed first), so
    it answers settled, the first time and on every repeat."""
    return replace(movement_outcome(transfer, replayed=replayed), status=_SETTLED_STATUS)
