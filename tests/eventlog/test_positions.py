"""Where stored events sit: one event's position, and the latest of many
(a repeated batch's answer names thousands of them at once)."""

from __future__ import annotations

from uuid import uuid4

from application import commands as c
from application.eventlog.reader import REFS_PER_QUERY_MAX
from domain.system import TREASURY_ID


def test_the_latest_position_of_many_events_is_the_largest_of_theirs(ledger):
    accounts = [ledger.open_account() for _ in range(3)]
    log = ledger.app.event_log
    refs = [(account, 1) for account in accounts]
    positions = [log.position_of(*ref) for ref in refs]

    assert log.latest_position_of(refs) == max(positions)
    assert log.latest_position_of(list(reversed(refs[:2]))) == max(positions[:2])
    assert log.latest_position_of([(uuid4(), 1), (accounts[0], 99)]) is None
    assert log.latest_position_of([(uuid4(), 1), refs[1]]) == positions[1]


def test_more_events_than_one_query_takes_are_asked_in_chunks(ledger):
    destination = ledger.open_account()
    ids = [uuid4() for _ in range(5)]
    ledger.execute(c.TransferBatch(tuple(
        c.TransferFunds(transfer_id, TREASURY_ID, destination, 1) for transfer_id in ids)))
    log = ledger.app.event_log
    last = log.position_of(ids[-1], 1)
    padding = [(uuid4(), 1)] * REFS_PER_QUERY_MAX
    assert log.latest_position_of([(ids[-1], 1), *padding, (ids[0], 1)]) == last


def test_the_end_of_a_commit_is_its_last_event_whatever_event_is_asked(ledger):
    from application.eventlog.commits import CommitBoundaries
    from application.eventlog.decoder import EventDecoder

    destination = ledger.open_account()
    before = ledger.app.event_log.head()
    ledger.execute(c.TransferBatch(tuple(
        c.TransferFunds(uuid4(), TREASURY_ID, destination, 1) for _ in range(20))))
    end = ledger.app.event_log.head()
    ledger.open_account()  # a later commit, another stamp
    commits = CommitBoundaries(ledger.app.event_log, EventDecoder(ledger.app.mapper))
    assert {commits.end_of(position) for position in range(before + 1, end + 1)} == {end}
    assert commits.end_of(before) == before
    assert commits.end_of(ledger.app.event_log.head()) == ledger.app.event_log.head()
