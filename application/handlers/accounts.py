"""Account lifecycle: open, freeze, unfreeze, and allowances.

Freezing a frozen account, unfreezing an unfrozen one and setting an
allowance to what it already is change nothing: they are answered as
repeats of the command that made it so (its event's position), which an
account from before this release may not know (a snapshot without the
versions): then its latest position."""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.conflicts import held_by_another_kind
from application.handlers.session import AggregateSession
from application.outcomes import AccountOpened, AccountStatusChanged, AllowanceSet
from domain.account import USER, Account
from domain.amounts import check_amount
from domain.errors import AccountExists, InvalidRequest


def open_account(command: c.OpenAccount, session: AggregateSession, now: datetime) -> AccountOpened:
    if command.account_kind != USER:
        raise InvalidRequest("only user accounts can be opened; system accounts exist from genesis")
    existing = session.existing_for_new_id(command.account_id)
    if existing is not None:
        return _reopen(existing, command, session)
    session.add(Account.open(command.account_id, command.account_kind, now), primary=True)
    return AccountOpened(account_id=command.account_id, kind=command.account_kind,
                         answered_by=((command.account_id, 1),))


def _reopen(existing, command: c.OpenAccount, session: AggregateSession) -> AccountOpened:
    if not isinstance(existing, Account):
        raise held_by_another_kind(existing, command.account_id, command.id_field)
    if existing.kind != command.account_kind:
        raise AccountExists(f"account {command.account_id} exists as a {existing.kind} account")
    session.set_primary(existing.id)
    return AccountOpened(account_id=existing.id, kind=existing.kind, replayed=True,
                         answered_by=((existing.id, 1),))


def freeze_account(
    command: c.FreezeAccount, session: AggregateSession, now: datetime
) -> AccountStatusChanged:
    return _set_frozen(command.account_id, True, session, now)


def unfreeze_account(
    command: c.UnfreezeAccount, session: AggregateSession, now: datetime
) -> AccountStatusChanged:
    return _set_frozen(command.account_id, False, session, now)


def _set_frozen(
    account_id, frozen: bool, session: AggregateSession, now: datetime
) -> AccountStatusChanged:
    account = session.account(account_id)
    changed = account.freeze(now) if frozen else account.unfreeze(now)
    session.set_primary(account.id)
    return AccountStatusChanged(
        account_id=account.id, frozen=frozen, replayed=not changed,
        answered_by=((account.id, account.status_version() or account.version),),
    )


def set_allowance(command: c.SetAllowance, session: AggregateSession, now: datetime) -> AllowanceSet:
    amount = check_amount(command.amount, allow_zero=True)
    owner = session.account(command.owner)
    spender = session.account(command.spender)
    changed = owner.set_allowance(spender, amount, now)
    session.set_primary(owner.id)
    version = owner.allowance_version(command.spender) or owner.version
    return AllowanceSet(
        owner=owner.id, spender=command.spender, amount=amount, replayed=not changed,
        answered_by=((owner.id, version),),
    )
