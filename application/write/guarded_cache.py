"""The aggregate cache as one attempt's session reads it, guarding the
cache from commands that can fail midway.

Commands change the very aggregate objects the cache holds (that is what
makes a batch's hundredth fee see the ninety-nine before it). A command that
changes some and then fails (an atomic batch's bad item) leaves them
changed, so they had to be evicted and loaded again from the store: for a
hot account, hundreds of events to replay since its last snapshot, for each
bad batch. While such a command is decided (``guarding``), an aggregate it
takes from the cache is a copy instead; if it fails, the cached original is
as it was before the attempt and stays (``copied`` names them), and if the
attempt commits, the processor puts the copies in the cache as usual.
"""

from __future__ import annotations

import copy
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.write.aggregate_cache import AggregateCache


class GuardedCache:
    def __init__(self, cache: AggregateCache) -> None:
        self._cache = cache
        self._copies: dict[UUID, Aggregate] = {}
        self.guarding = False
        """Set while a command that can fail midway is decided."""

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        copied = self._copies.get(aggregate_id)
        if copied is not None:
            return copied
        aggregate = self._cache.get(aggregate_id)
        if aggregate is None or not self.guarding:
            return aggregate
        copied = copy.deepcopy(aggregate)
        self._copies[aggregate_id] = copied
        return copied

    @property
    def copied(self) -> set[UUID]:
        """The aggregates whose cached originals no command of the attempt changed."""
        return set(self._copies)
