"""Holds past their expiry are released by the command that finds them.

A hold reserves its amount until it expires, not until the sweeper gets
round to recording that (``application.ops.hold_expiry``): a decision at
time ``now`` counts only the holds not yet due (``Account.available_at``).
A command that then spends from the account records the due holds' expiry
first, in its own commit, so the stored balance never shows a spend of
funds still held; the sweeper finds those holds expired and leaves them.
A hold placed before ``HoldPlaced`` carried its expiry is looked up in its
own record first (``learn_hold_expiries``), so it obeys the same rule.
"""

from __future__ import annotations

from datetime import datetime

from application.handlers.session import AggregateSession
from domain.account import Account
from domain.errors import HoldNotFound
from domain.transfer import Transfer, record_expiry


def learn_hold_expiries(account: Account, session: AggregateSession) -> None:
    """Call before deciding on what the account may spend."""
    for hold_id in account.holds_without_expiry():
        hold = session.get(hold_id)
        if isinstance(hold, Transfer) and hold.expires_at is not None:
            account.learn_hold_expiry(hold_id, hold.expires_at)


def release_expired_holds(account: Account, session: AggregateSession, now: datetime) -> None:
    """Call after every check passed, before the account spends."""
    for hold_id in account.expired_holds(now):
        hold = session.get(hold_id)
        if not isinstance(hold, Transfer):
            raise HoldNotFound(f"hold {hold_id} on account {account.id} does not exist")
        record_expiry(hold, account, now)
