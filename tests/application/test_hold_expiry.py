from uuid import uuid4

from application import commands as c
from application.ops.hold_expiry import HoldExpirySweeper
from domain.amounts import UNITS_PER_DEAL
from domain.transfer import PENDING


def pending_holds_from_the_aggregates(ledger, hold_ids):
    """A stand-in for the holds read model: due pending holds among those placed."""
    def due(now, limit):
        holds = [ledger.app.transfer(h) for h in hold_ids]
        return [h.id for h in holds if h.phase == PENDING and h.is_expired_at(now)][:limit]
    return due


def test_the_sweeper_releases_due_holds_and_leaves_the_others(ledger):
    account = ledger.open_account(10 * UNITS_PER_DEAL)
    short, long_, captured = uuid4(), uuid4(), uuid4()
    ledger.execute(c.PlaceHold(short, account, amount=UNITS_PER_DEAL, expires_in_s=5))
    ledger.execute(c.PlaceHold(long_, account, amount=UNITS_PER_DEAL, expires_in_s=500))
    ledger.execute(c.PlaceHold(captured, account, amount=UNITS_PER_DEAL, expires_in_s=5))
    ledger.execute(c.CaptureHold(captured))
    sweeper = HoldExpirySweeper(
        ledger.writer, pending_holds_from_the_aggregates(ledger, [short, long_, captured]),
        clock=ledger.clock)
    assert sweeper.sweep() == 0
    ledger.clock.advance(6)
    assert sweeper.sweep() == 1
    assert ledger.app.transfer(short).phase == "expired"
    assert ledger.app.transfer(long_).phase == PENDING
    assert ledger.app.account(account).held == UNITS_PER_DEAL
    assert sweeper.sweep() == 0
    expiry = list(ledger.app.repository.event_store.get(short))[-1]
    assert (expiry.requested_by, expiry.request_id) == ("system:sweeper", None)


def test_two_sweepers_racing_expire_a_hold_once(ledger):
    account = ledger.open_account(UNITS_PER_DEAL)
    hold = uuid4()
    ledger.execute(c.PlaceHold(hold, account, amount=UNITS_PER_DEAL, expires_in_s=1))
    ledger.clock.advance(2)
    stale_source = lambda now, limit: [hold]  # noqa: E731 - a read model that lags
    first = HoldExpirySweeper(ledger.writer, stale_source, clock=ledger.clock)
    second = HoldExpirySweeper(ledger.writer, stale_source, clock=ledger.clock)
    assert first.sweep() + second.sweep() == 1
    assert ledger.app.account(account).held == 0
