"""A non-atomic batch is committed in chunks of ``BATCH_CHUNK_ITEMS`` items
(``application.write.chunks``), one answer for all of them: in item order,
exactly the first answer when repeated, completed without doubling by a
resend after a failure between chunks. Atomic batches stay one commit.
Commits are counted by their stamps in the log (one per group commit)."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.utils import get_topic

from application import commands as c
from application.authority import INTERNAL
from application.errors import LedgerUnavailable
from application.outcomes import BatchRecorded
from application.write.chunks import BATCH_CHUNK_ITEMS, GROUP_BATCH_ITEMS_MAX, chunks_of, merged
from domain.transfer import Transfer
from tests.support.log import debits_by_transfer
from tests.support.writer_counts import WriterCounts

ITEMS = 2 * BATCH_CHUNK_ITEMS + 7
ANSWER_WAIT_S = 300  # a busy machine; never a latency bound


def batch(source: UUID, destination: UUID, items: int = ITEMS, *,
          atomic: bool = False) -> c.TransferBatch:
    return c.TransferBatch(tuple(c.TransferFunds(uuid4(), source, destination, 1, "chunks")
                                 for _ in range(items)), atomic=atomic)


def items(outcome: BatchRecorded) -> list[tuple]:
    """Each item's answer as a client reads it (a repeat's items differ
    only in their ``replayed`` flag)."""
    return [(r.transfer_id, r.error, r.outcome and replace(r.outcome, replayed=False))
            for r in outcome.results]


def commit_stamps(ledger, command: c.TransferBatch) -> set[object]:
    """The stamps of the commits that hold the batch's transfers."""
    ids = {item.transfer_id for item in command.transfers}
    notifications = ledger.app.recorder.select_notifications(
        start=1, limit=10**6, topics=[get_topic(Transfer.Recorded)])
    events = (ledger.app.mapper.to_domain_event(n) for n in notifications)
    return {event.timestamp for event in events if event.originator_id in ids}


@pytest.fixture
def pair(ledger) -> tuple[UUID, UUID]:
    return ledger.open_account(10**12), ledger.open_account()


def test_a_big_batch_is_committed_in_chunks_and_answered_once_in_item_order(ledger, pair):
    command = batch(*pair)
    counts = WriterCounts()
    outcome = ledger.execute(command)
    assert isinstance(outcome, BatchRecorded) and not outcome.replayed
    assert [r.transfer_id for r in outcome.results] == [t.transfer_id for t in command.transfers]
    assert all(r.outcome is not None for r in outcome.results)
    commits = math.ceil(ITEMS / BATCH_CHUNK_ITEMS)
    assert len(commit_stamps(ledger, command)) == commits
    assert counts.since()["batch_chunks"] == commits
    assert outcome.position == ledger.app.event_log.head()
    assert ledger.balance(pair[1]) == ITEMS


def test_a_repeated_chunked_batch_answers_exactly_its_first_answer(ledger, pair):
    command = batch(*pair)
    first = ledger.execute(command)
    ledger.execute(c.TransferFunds(uuid4(), pair[0], pair[1], 1, "in between"))
    again = ledger.execute(command)
    assert again.replayed and items(again) == items(first)
    assert again.position == first.position
    assert ledger.balance(pair[1]) == ITEMS + 1


def test_a_failure_between_chunks_leaves_whole_chunks_and_a_resend_completes(
        ledger, pair, monkeypatch):
    command = batch(*pair)
    put, calls = ledger.app.events.put, []

    def fails_second_chunk(events, **kwargs):
        calls.append(len(events))
        if len(calls) == 2:
            raise OperationalError("the store went away")
        return put(events, **kwargs)

    monkeypatch.setattr(ledger.app.events, "put", fails_second_chunk)
    with pytest.raises(LedgerUnavailable, match=f"first {BATCH_CHUNK_ITEMS} items were committed"):
        ledger.execute(command)
    debits = debits_by_transfer(ledger.app)
    applied = [debits[t.transfer_id] for t in command.transfers]
    assert applied == [1] * BATCH_CHUNK_ITEMS + [0] * (ITEMS - BATCH_CHUNK_ITEMS)
    resent = ledger.execute(command)
    assert not resent.replayed and all(r.outcome is not None for r in resent.results)
    debits = debits_by_transfer(ledger.app)
    assert [debits[t.transfer_id] for t in command.transfers] == [1] * ITEMS
    repeated = ledger.execute(command)
    assert repeated.replayed and items(repeated) == items(resent)
    assert repeated.position == resent.position


def test_an_atomic_batch_is_one_commit(ledger, pair):
    command = batch(*pair, atomic=True)
    outcome = ledger.execute(command)
    assert isinstance(outcome, BatchRecorded) and outcome.atomic
    assert len(commit_stamps(ledger, command)) == 1
    assert chunks_of(command) == [command]


def test_a_refused_item_answers_in_its_place_across_chunks(ledger, pair):
    source, destination = pair
    items = list(batch(source, destination).transfers)
    broke = ledger.open_account()
    items[BATCH_CHUNK_ITEMS + 3] = c.TransferFunds(uuid4(), broke, destination, 1, "no funds")
    outcome = ledger.execute(c.TransferBatch(tuple(items)))
    refused = [i for i, r in enumerate(outcome.results) if r.error is not None]
    assert refused == [BATCH_CHUNK_ITEMS + 3]
    assert outcome.results[refused[0]].error.code == "insufficient_balance"


def test_big_batches_sent_at_once_share_no_commit_beyond_the_group_limit(
        ledger, pair, monkeypatch):
    """Three big batches waiting together: each group takes at most
    ``GROUP_BATCH_ITEMS_MAX`` batch items, so no commit holds all of them."""
    process_group, sizes = ledger.processor.process_group, []
    gate, entered = threading.Event(), threading.Event()

    def gated(commands, spent=None, **kwargs):
        if not gate.is_set():
            entered.set()
            assert gate.wait(ANSWER_WAIT_S)
        sizes.append(sum(len(getattr(command, "transfers", ())) for command in commands))
        return process_group(commands, spent, **kwargs)

    monkeypatch.setattr(ledger.processor, "process_group", gated)
    opener = ledger.writer.send(c.OpenAccount(uuid4()), authority=INTERNAL)
    assert entered.wait(ANSWER_WAIT_S)
    commands = [batch(*pair) for _ in range(3)]
    futures = [ledger.writer.send(command, authority=INTERNAL) for command in commands]
    gate.set()
    opener.result(ANSWER_WAIT_S)
    answers = [future.result(ANSWER_WAIT_S) for future in futures]
    assert all(len(a.results) == ITEMS and not a.replayed for a in answers)
    assert max(sizes) <= GROUP_BATCH_ITEMS_MAX and sum(sizes) == 3 * ITEMS
    assert ledger.balance(pair[1]) == 3 * ITEMS


def test_merged_takes_the_latest_position_and_a_replay_only_when_every_chunk_is():
    first = BatchRecorded(atomic=False, applied=True, results=(), replayed=True, position=7)
    last = BatchRecorded(atomic=False, applied=True, results=(), replayed=False, position=9)
    assert merged([first, last]).position == 9 and not merged([first, last]).replayed
    assert merged([first, first]).replayed
