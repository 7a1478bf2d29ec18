"""Pages of the stored log with an upper bound: the audit reads up to a cut
position, and a bounded page must hold exactly the events at or below it."""

from __future__ import annotations

from application.eventlog.opening import event_log_for


def test_a_bounded_page_holds_exactly_the_events_up_to_the_bound(ledger):
    for _ in range(3):
        ledger.open_account(funded=10)
    log = event_log_for(ledger.app.recorder)
    head = log.head()
    everything = [event.position for event in log.read(0, 1000)]
    cut = everything[-3]

    bounded = [event.position for event in log.read(0, 1000, upto=cut)]

    assert bounded == [position for position in everything if position <= cut]
    assert [e.position for e in log.read(0, 2, upto=head)] == everything[:2]
    assert log.read(cut, 1000, upto=cut) == []
    assert [e.position for e in log.read(cut, 1000, upto=head)] == everything[-2:]
