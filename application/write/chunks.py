"""A non-atomic batch is committed in chunks, so one client's big batch
never holds the store's writer lock for long.

Every commit takes the events table lock (PostgreSQL: and the writer turn,
shared) for as long as it writes; a batch of 8,000 items committed whole is
24,000 rows under that lock, and every other process's commands wait behind
it and may run out of their lock timeout and retry budget (503 "the event
store stayed contended") while the store is healthy. The writer therefore
decides and commits a non-atomic batch ``BATCH_CHUNK_ITEMS`` items at a
time, one chunk per group, and the lock is free between chunks for the
commands of this process and of others.

The batch still has one answer: its chunks' answers merged in item order,
at the position of its last commit. What the chunks make visible:

- Readers may see a prefix of the batch (its first chunks) before the rest
  is committed; each chunk is whole (its items' debits with their credits).
- A crash or an outage between chunks leaves whole chunks applied and the
  batch answered with the error (saying how many items were applied);
  resending the batch completes it: each item is idempotent by its
  ``transfer_id``, so an applied item answers its recorded result and is
  not applied again.
- A repeated batch whose items were all applied answers exactly its first
  answer: each chunk's repeat answers at the end of the commit that held
  it, so the merged position is the first answer's.

An atomic batch is all or nothing, so it stays one command and one commit;
its size is bounded by the request limit (``BATCH_ITEMS_MAX``). So that
several big batches sent at once are not one long commit either, a group
takes batches' items up to ``GROUP_BATCH_ITEMS_MAX`` (its first command
whatever its size).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from application.commands import Command, TransferBatch
from application.outcomes import BatchRecorded
from domain.errors import LedgerError

BATCH_CHUNK_ITEMS = 500
"""Items per commit of a non-atomic batch. 500 transfers are 1,500 events,
a commit of a few tens of milliseconds: large enough that a big batch still
shares the cost of each commit over hundreds of items (the 8,000-item
ceiling is 16 commits), small enough that another process's command waits
a short commit, never a lock timeout (10 s), behind it."""


GROUP_BATCH_ITEMS_MAX = 2 * BATCH_CHUNK_ITEMS
"""Batch items one group commit takes at most (chunks of several batches,
atomic batches), besides the first command it takes whatever its size."""


def batch_items(command: Command) -> int:
    """What ``command`` weighs against ``GROUP_BATCH_ITEMS_MAX``."""
    return len(command.transfers) if isinstance(command, TransferBatch) else 0


def chunks_of(command: Command, size: int = BATCH_CHUNK_ITEMS) -> list[Command]:
    """``command`` as the commands the writer decides one per group: a
    non-atomic batch of more than ``size`` items in chunks of ``size``;
    anything else whole."""
    if not isinstance(command, TransferBatch) or command.atomic or len(command.transfers) <= size:
        return [command]
    items = command.transfers
    return [TransferBatch(items[start:start + size], atomic=False)
            for start in range(0, len(items), size)]


def is_batch_chunk(command: Command) -> bool:
    """Whether ``command`` is (a chunk of) a non-atomic batch."""
    return isinstance(command, TransferBatch) and not command.atomic


def merged(answers: Sequence[BatchRecorded]) -> BatchRecorded:
    """One batch's answer from its chunks' answers, in item order: applied
    at the latest chunk's position, a replay when every chunk was one."""
    positions = [answer.position for answer in answers if answer.position is not None]
    return BatchRecorded(
        atomic=False, applied=True,
        results=tuple(item for answer in answers for item in answer.results),
        replayed=all(answer.replayed for answer in answers),
        answered_by=tuple(ref for answer in answers for ref in answer.answered_by),
        position=max(positions) if positions else None,
    )


def partly_applied(error: LedgerError, answers: Sequence[BatchRecorded]) -> LedgerError:
    """A chunk's refusal (an outage, say) as the batch's answer, saying how
    many of its first items the chunks before it applied."""
    if not answers:
        return error
    items = sum(len(answer.results) for answer in answers)
    refusal = copy.copy(error)
    refusal.message = (f"{error.message} (for the items from {items} on: the batch's first "
                       f"{items} items were committed before; resend the whole batch: those "
                       "answer their recorded result again and the rest are applied)")
    refusal.args = (refusal.message,)
    return refusal
