"""A bounded least-recently-used cache of aggregates for the command writer.

Bounded so a service that has seen a million accounts keeps only the hot
ones in memory; anything evicted is simply loaded again from the store.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from eventsourcing.domain import Aggregate

AGGREGATES_MAX_DEFAULT = 50_000


class AggregateCache:
    def __init__(self, aggregates_max: int = AGGREGATES_MAX_DEFAULT) -> None:
        if aggregates_max < 1:
            raise ValueError("the aggregate cache needs room for at least one aggregate")
        self.aggregates_max = aggregates_max
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self._items.get(aggregate_id)
        if aggregate is not None:
            self._items.move_to_end(aggregate_id)
        return aggregate

    def put(self, aggregate: Aggregate) -> None:
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.aggregates_max:
            self._items.popitem(last=False)

    def evict(self, aggregate_id: UUID) -> None:
        self._items.pop(aggregate_id, None)

    def version_of(self, aggregate_id: UUID) -> int | None:
        aggregate = self._items.get(aggregate_id)
        return None if aggregate is None else aggregate.version

    def clear(self) -> None:
        self._items.clear()
