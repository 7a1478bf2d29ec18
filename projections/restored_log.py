"""Read models of another timeline than the log's: the event log restored
without them (the embedded ``events.sqlite`` put back alone, or only the
log's tables of a PostgreSQL schema).

Read models and hash checkpoints kept from after the backup describe events
the restored log no longer has: standing past its head, or, once new
commands filled those positions again, folded from other events than the
log's. Either would show the lost timeline, stall the projector on the next
command, or make an audit report tampering. The projector asks
``lost_timeline`` when it loads its position and, when it names one,
rebuilds the read models from the log by itself (``Projector``).

The check is cheap: the newest checkpoint at or below the read models'
position is recomputed from the log's events of that page (one page, from
the full link of the checkpoint before it), which proves that the log still
holds every event the read models were folded from at their end. The
checkpoints that do not verify, newest first, are the lost timeline's: they
are dropped with the rebuild, and the last of them (position and chain
head) is logged, so the evidence of what the log lost is kept outside the
store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Protocol

from application.eventlog.reader import EventLog, LogEvent
from projections.hashchain import Checkpoint, HashChain

Row = tuple[Checkpoint, int, bytes]
"""A checkpoint, and the last position and chain head of the one before it."""


@dataclass(frozen=True)
class LostTimeline:
    """Why the read models are not of the log's timeline; ``kept_upto``:
    where the checkpoints of the log's own timeline end (those past it are
    the lost timeline's), ``lost_head``: its newest checkpointed position
    and chain head."""

    why: str
    kept_upto: int
    lost_head: tuple[int, bytes] | None


class CheckpointSource(Protocol):
    """What ``lost_timeline`` reads of the read model store."""

    def position(self) -> int: ...

    def checkpoints_newest_first(self, upto: int | None = None) -> Iterator[Row]: ...


def lost_timeline(store: CheckpointSource, log: EventLog) -> LostTimeline | None:
    """The read models' timeline the log lost, or None when they are of
    the log's (or empty)."""
    position, head = store.position(), log.head()
    if position == 0:
        return None
    if position > head:
        why = (f"the read models stand at position {position}, past the event log's head "
               f"{head}: the log was restored without them")
    else:
        at_position = next(store.checkpoints_newest_first(position), None)
        if at_position is None or _verifies(at_position, log):
            return None
        first, last = at_position[0].first_position, at_position[0].last_position
        why = (f"the read models' events at positions {first} to {last} are not the event "
               "log's: the log was restored without them and written to since")
    return _kept(why, store.checkpoints_newest_first(), log)


def _kept(why: str, rows: Iterator[Row], log: EventLog) -> LostTimeline:
    """Walk the checkpoints back to the newest the log verifies."""
    newest = next(rows, None)
    lost_head = None if newest is None else (newest[0].last_position, newest[0].head)
    for row in chain(() if newest is None else (newest,), rows):
        if _verifies(row, log):
            return LostTimeline(why, row[0].last_position, lost_head)
    return LostTimeline(why, 0, lost_head)


def _verifies(row: Row, log: EventLog) -> bool:
    """The log's events of the checkpoint's page extend the chain from the
    checkpoint before it to this one's head."""
    checkpoint, previous_position, previous_head = row
    recomputed = HashChain(previous_position, previous_head).extend(
        _events(log, previous_position, checkpoint.last_position))
    return (recomputed is not None and recomputed.last_position == checkpoint.last_position
            and recomputed.head == checkpoint.head)


def _events(log: EventLog, after: int, upto: int) -> Iterator[LogEvent]:
    while page := log.read(after, upto - after, upto=upto):
        yield from page
        after = page[-1].position
