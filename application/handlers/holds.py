"""Holds: two-phase fees. A hold reserves funds on the account (a pending
transfer to the treasury); capture posts all or part of it, void and expiry
release it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from application import commands as c
from application.handlers.expiry import learn_hold_expiries, release_expired_holds
from application.handlers.movements import movement_outcome, price_schedule, replay
from application.handlers.session import AggregateSession
from application.outcomes import HoldPlaced, HoldReleased, MovementRecorded
from application.references import references_of
from domain.amounts import check_amount
from domain.errors import HoldNotFound, HoldNotPending, InvalidRequest
from domain.movements import FEE
from domain.pricing import check_service_type
from domain.system import TREASURY_ID
from domain.transfer import CAPTURED, EXPIRED, PENDING, VOIDED, Transfer, record_expiry

HOLD_EXPIRY_S_DEFAULT = c.HOLD_EXPIRY_S_DEFAULT
HOLD_EXPIRY_S_MAX = 30 * 24 * 3600


def place_hold(command: c.PlaceHold, session: AggregateSession, now: datetime) -> HoldPlaced:
    expires_in_s = _check_expiry(command.expires_in_s)
    existing = session.existing_transfer(command.hold_id, command.id_field)
    if existing is not None:
        replay(existing, command, session)
        return _hold_placed(existing, session, replayed=True)
    references = references_of(command)  # checked before anything is held
    amount = _hold_amount(command, session, now)
    account = session.account(command.account_id)
    treasury = session.account(TREASURY_ID)
    expires_at = now + timedelta(seconds=expires_in_s)
    learn_hold_expiries(account, session)
    account.check_can_hold(amount, now)
    release_expired_holds(account, session, now)
    account.place_hold(command.hold_id, amount, now, expires_at)
    hold = Transfer.record(
        command.hold_id, kind=FEE, source=account.id, destination=TREASURY_ID, amount=amount,
        reason=command.service_type or "hold", fingerprint=command.fingerprint(),
        source_balance_after=account.balance, destination_balance_after=treasury.balance,
        now=now, phase=PENDING, expires_at=expires_at, available_after=account.available,
        references=references,
    )
    session.add(hold, primary=True)
    return _hold_placed(hold, session)


def capture_hold(
    command: c.CaptureHold, session: AggregateSession, now: datetime
) -> MovementRecorded:
    hold = _hold(command.hold_id, session)
    if hold.phase == CAPTURED and hold.outcome_fingerprint == command.fingerprint():
        session.set_primary(hold.id)
        return _captured(hold, replayed=True)
    hold.check_hold_pending(now)
    amount = hold.amount if command.amount is None else check_amount(command.amount)
    account = session.account(hold.source)
    treasury = session.account(hold.destination)
    treasury.check_can_receive()
    account.capture_hold(hold.id, amount, FEE, hold.reason, now)
    treasury.credit(hold.id, amount, FEE, hold.reason, now)
    hold.capture(amount, command.fingerprint(), account.balance, treasury.balance, now)
    session.set_primary(hold.id)
    return _captured(hold)


def void_hold(command: c.VoidHold, session: AggregateSession, now: datetime) -> HoldReleased:
    hold = _hold(command.hold_id, session)
    if hold.phase == VOIDED:
        session.set_primary(hold.id)
        return _released(hold, VOIDED, replayed=True)
    hold.check_hold_pending(now)
    session.account(hold.source).void_hold(hold.id, now)
    hold.void(now)
    session.set_primary(hold.id)
    return _released(hold, VOIDED)


def expire_hold(command: c.ExpireHold, session: AggregateSession, now: datetime) -> HoldReleased:
    """Run by the expiry sweeper; a hold captured or voided meanwhile is
    left alone and answered as already done."""
    hold = _hold(command.hold_id, session)
    session.set_primary(hold.id)
    if hold.phase != PENDING:
        return _released(hold, hold.phase, replayed=True)
    if not hold.is_expired_at(now):
        raise HoldNotPending(f"hold {hold.id} is not due to expire yet")
    record_expiry(hold, session.account(hold.source), now)
    return _released(hold, EXPIRED)


def _hold(hold_id, session: AggregateSession) -> Transfer:
    hold = session.get(hold_id)
    if not isinstance(hold, Transfer) or not hold.is_hold:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    return hold


def _hold_amount(command: c.PlaceHold, session: AggregateSession, now: datetime) -> int:
    if command.amount is not None:
        if command.service_type is not None:
            check_service_type(command.service_type)
        return check_amount(command.amount)
    if command.service_type is None:
        raise InvalidRequest("a hold needs an amount or a service_type")
    return price_schedule(session).price_at(check_service_type(command.service_type), now)


def _check_expiry(expires_in_s: int | None) -> int:
    if expires_in_s is None:
        return HOLD_EXPIRY_S_DEFAULT
    if type(expires_in_s) is not int or not 1 <= expires_in_s <= HOLD_EXPIRY_S_MAX:
        raise InvalidRequest(f"expires_in_s must be an integer from 1 to {HOLD_EXPIRY_S_MAX}")
    return expires_in_s


def _hold_placed(hold: Transfer, session: AggregateSession, *, replayed: bool = False) -> HoldPlaced:
    """What placing answered. The available balance then is recorded with
    the hold; a hold recorded before it was (no ``available_after``) answers
    the account's available balance now."""
    available = hold.available_after
    if available is None:
        available = session.account(hold.source).available
    assert hold.expires_at is not None
    return HoldPlaced(
        hold_id=hold.id, account_id=hold.source, amount=hold.amount,
        service_type=None if hold.reason == "hold" else hold.reason,
        expires_at=hold.expires_at, available=available, replayed=replayed,
        answered_by=((hold.id, 1),),
    )


def _captured(hold: Transfer, *, replayed: bool = False) -> MovementRecorded:
    """What the capture answered: the hold as its capture left it."""
    assert hold.closed_version is not None and hold.closed_status is not None
    return replace(movement_outcome(hold, replayed=replayed), status=hold.closed_status,
                   answered_by=((hold.id, hold.closed_version),))


def _released(hold: Transfer, cause: str, *, replayed: bool = False) -> HoldReleased:
    refs = () if hold.closed_version is None else ((hold.id, hold.closed_version),)
    return HoldReleased(
        hold_id=hold.id, account_id=hold.source, amount=hold.amount, cause=cause,
        replayed=replayed, answered_by=refs,
    )
