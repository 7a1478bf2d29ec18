"""A hold stops reserving its amount at its expiry, not when it is swept.

The sweeper (``application.ops.hold_expiry``) only records expiries; a
decision at a command's own time already counts a hold past its expiry as
released, and a command that spends the freed funds records the expiry
first, in its own commit. The clock is the test's: no sleeping.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from application.outcomes import HoldReleased
from domain.amounts import UNITS_PER_DEAL
from domain.errors import HoldNotPending, InsufficientBalance
from projections.runtime import ReadSide

TEN = 10 * UNITS_PER_DEAL


def _held_in_full(ledger, expires_in_s: int = 60):
    account, hold = ledger.open_account(TEN), uuid4()
    ledger.execute(c.PlaceHold(hold, account, amount=TEN, expires_in_s=expires_in_s))
    return account, hold


def test_what_an_expired_hold_reserved_is_spent_before_the_sweeper_runs(ledger, store):
    account, hold = _held_in_full(ledger)
    receiver = ledger.open_account()
    ledger.clock.advance(59)
    with pytest.raises(InsufficientBalance, match="available balance 0 DEAL"):
        ledger.execute(c.TransferFunds(uuid4(), account, receiver, TEN))
    ledger.clock.advance(1)  # the hold's expiry, to the microsecond at most

    side = ReadSide(ledger.app, store.env, clock=ledger.clock)
    try:
        side.projector.catch_up()
        assert side.queries.balance(account).available == TEN
        ledger.execute(c.TransferFunds(uuid4(), account, receiver, TEN))
        side.projector.catch_up()  # a stored available below zero would be a violation here
        after = side.queries.balance(account)
        assert (after.balance, after.available) == (0, 0)
        assert side.queries.balance(receiver).balance == TEN
    finally:
        side.close()
    stored = ledger.app.account(account)
    assert (stored.balance, stored.held, stored.holds) == (0, 0, {})
    assert ledger.app.transfer(hold).phase == "expired"
    swept = ledger.execute(c.ExpireHold(hold))  # what the sweeper sends, later
    assert isinstance(swept, HoldReleased) and swept.replayed


def test_a_new_hold_takes_the_room_an_expired_one_left(ledger):
    account, old = _held_in_full(ledger, expires_in_s=5)
    ledger.clock.advance(5)
    placed = ledger.execute(c.PlaceHold(uuid4(), account, amount=TEN))
    assert placed.available == 0
    assert ledger.app.transfer(old).phase == "expired"
    assert ledger.app.account(account).held == TEN


def test_a_spender_and_a_fee_see_the_room_too_and_a_refusal_records_nothing(ledger):
    account, hold = _held_in_full(ledger, expires_in_s=5)
    spender, receiver = ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(account, spender, TEN))
    ledger.clock.advance(5)
    head = ledger.app.event_log.head()
    with pytest.raises(InsufficientBalance):  # more than the balance: refused, expiry unrecorded
        ledger.execute(c.TransferFrom(uuid4(), spender, account, receiver, TEN + 1))
    assert ledger.app.event_log.head() == head
    assert ledger.app.transfer(hold).phase == "pending"
    ledger.execute(c.TransferFrom(uuid4(), spender, account, receiver, TEN - UNITS_PER_DEAL))
    ledger.execute(c.ChargeFee(uuid4(), account, "goal"))  # 1 DEAL
    assert ledger.app.account(account).available == 0


def test_an_expired_hold_is_neither_captured_nor_voided(ledger):
    _, hold = _held_in_full(ledger, expires_in_s=5)
    ledger.clock.advance(5)
    with pytest.raises(HoldNotPending):
        ledger.execute(c.CaptureHold(hold))
    with pytest.raises(HoldNotPending):
        ledger.execute(c.VoidHold(hold))
