"""The hash chain pinpoints the first altered, removed or inserted event."""

from __future__ import annotations

from application.eventlog.reader import LogEvent
from projections.hashchain import ChainVerifier, HashChain


def log(positions, states=None):
    states = states or {}
    return [LogEvent(p, f"{p:032x}", 1, "t", states.get(p, b"s%d" % p)) for p in positions]


def checkpoints_for(events, page=3):
    chain, entries = HashChain(), []
    for start in range(0, len(events), page):
        checkpoint = chain.extend(events[start:start + page])
        entries.extend(checkpoint.entries())
        chain.advance(checkpoint)
    return entries, chain


def verify(stored, checkpointed_events, upto=None):
    entries, _ = checkpoints_for(checkpointed_events)
    verifier = ChainVerifier(iter(entries), checkpointed_events[-1].position)
    verifier.feed(stored)
    verifier.finish(upto or checkpointed_events[-1].position)
    return verifier.first_tampered, verifier.detail


def test_an_untouched_log_verifies():
    events = log([1, 2, 3, 5, 6, 7, 8])
    assert verify(events, events) == (None, "")


def test_an_altered_event_is_reported_at_its_position():
    events = log([1, 2, 3, 5, 6, 7, 8])
    assert verify(log([1, 2, 3, 5, 6, 7, 8], {5: b"forged"}), events) == (5, "altered")


def test_a_removed_event_is_reported_at_its_position():
    events = log([1, 2, 3, 5, 6, 7, 8])
    assert verify(log([1, 2, 3, 6, 7, 8]), events) == (5, "removed")
    assert verify(log([1, 2, 3, 5, 6, 7]), events) == (8, "removed")


def test_an_event_inserted_into_a_gap_is_reported_at_its_position():
    events = log([1, 2, 3, 5, 6, 7, 8])
    assert verify(log([1, 2, 3, 4, 5, 6, 7, 8]), events) == (4, "inserted")


def test_events_past_the_last_checkpoint_cannot_be_judged():
    events = log([1, 2, 3])
    assert verify(log([1, 2, 3, 4, 5]), events, upto=5) == (None, "")


def test_a_rebuild_does_not_rewrite_checkpointed_links():
    events = log([1, 2, 3, 4])
    _, chain = checkpoints_for(events)
    assert chain.extend(events) is None  # all seen before: nothing to checkpoint again
    assert chain.extend(log([1, 2, 3, 4, 5])).first_position == 5
