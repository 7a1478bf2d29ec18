"""One batch's view of the aggregates, for the command writer.

Commands in a batch run one after another against the same aggregate
objects, so the second fee into the treasury sees the first. The session
remembers, per command, which events the command added, so the writer can
store them in command order, tell which commands wrote anything, and
notice a command that changed something and then failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.conflicts import held_by_another_kind
from application.handlers.rules import DEFAULT_RULES, Rules
from domain.account import Account
from domain.errors import AccountNotFound
from domain.transfer import Transfer

A = TypeVar("A", bound=Aggregate)
Loader = Callable[[UUID], Aggregate | None]


class CachedAggregates(Protocol):
    """The writer's cache of aggregates, as a session reads it
    (``application.write.aggregate_cache.AggregateCache``)."""

    def get(self, aggregate_id: UUID) -> Aggregate | None: ...


class AggregateSession:
    def __init__(self, load: Loader, cache: CachedAggregates, *, verify_new_ids: bool,
                 rules: Rules = DEFAULT_RULES) -> None:
        self._load = load
        self.rules = rules
        """What the settings ask of the handlers (``application.handlers.rules``)."""
        self._cache = cache
        self.verify_new_ids = verify_new_ids
        self.touched: dict[UUID, Aggregate] = {}
        self._marks: dict[UUID, int] = {}
        self.primary: UUID | None = None
        self.assumed_new: set[UUID] = set()
        self.loaded = False
        """Whether any aggregate was read from the store rather than the
        cache: only then can the batch's view mix two moments."""

    # Per-command bookkeeping.

    def begin_command(self) -> None:
        self._marks = {}
        self.primary = None
        self.assumed_new = set()

    def command_events(self) -> list:
        """The events the current command added, its primary aggregate's last."""
        events: list = []
        primary_events: list = []
        for aggregate_id, mark in self._marks.items():
            new = self.touched[aggregate_id].pending_events[mark:]
            (primary_events if aggregate_id == self.primary else events).extend(new)
        return events + primary_events

    def command_changed_anything(self) -> bool:
        return any(
            len(self.touched[aggregate_id].pending_events) != mark
            for aggregate_id, mark in self._marks.items()
        )

    # Access.

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self.touched.get(aggregate_id)
        if aggregate is None:
            aggregate = self._cache.get(aggregate_id)
            if aggregate is None:
                self.loaded = True
                aggregate = self._load(aggregate_id)
            if aggregate is None:
                return None
            self.touched[aggregate_id] = aggregate
        self._marks.setdefault(aggregate_id, len(aggregate.pending_events))
        return aggregate

    def get_typed(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        aggregate = self.get(aggregate_id)
        if aggregate is None:
            return None
        if not isinstance(aggregate, cls):
            raise held_by_another_kind(aggregate, aggregate_id)
        return aggregate

    def account(self, account_id: UUID) -> Account:
        aggregate = self.get(account_id)
        if not isinstance(aggregate, Account):
            raise AccountNotFound(f"account {account_id} does not exist")
        return aggregate

    def existing_for_new_id(self, aggregate_id: UUID) -> Aggregate | None:
        """What already holds an id a command wants to create.

        On the fast path the store is not asked: an id the cache does not
        know is assumed new, and the store's version check at commit catches
        the rare retry, after which the batch re-runs with verification on.
        """
        if aggregate_id in self.touched or self.verify_new_ids:
            return self.get(aggregate_id)
        cached = self._cache.get(aggregate_id)
        if cached is not None:
            return self.get(aggregate_id)
        self.assumed_new.add(aggregate_id)
        return None

    def existing_transfer(
        self, transfer_id: UUID, id_field: str | None = None
    ) -> Transfer | None:
        """The Transfer already named ``transfer_id``, if any; ``id_field``
        is the request's name for the id, for the refusal when another kind
        of aggregate holds it."""
        existing = self.existing_for_new_id(transfer_id)
        if existing is not None and not isinstance(existing, Transfer):
            raise held_by_another_kind(existing, transfer_id, id_field)
        return existing

    def stored_if_assumed_new(self, aggregate_id: UUID) -> Aggregate | None:
        """Before refusing a command whose id was assumed new, ask the store:
        a retry of a command that succeeded earlier must get its first
        answer, not a refusal based on today's balances."""
        if aggregate_id not in self.assumed_new:
            return None
        self.assumed_new.discard(aggregate_id)
        return self.get(aggregate_id)

    def read_stale(self, changes: Iterable[Change]) -> bool:
        """Whether another process changed an aggregate this batch read,
        after the version the batch decided on (its events not counted)."""
        for change in changes:
            aggregate = self.touched.get(change.aggregate_id)
            if aggregate is not None and change.version > _base_version(aggregate):
                return True
        return False

    def add(self, aggregate: Aggregate, *, primary: bool = False) -> None:
        self.touched[aggregate.id] = aggregate
        self._marks.setdefault(aggregate.id, 0)
        if primary:
            self.primary = aggregate.id

    def set_primary(self, aggregate_id: UUID | None) -> None:
        self.primary = aggregate_id


class Change(Protocol):
    """That an aggregate reached a version (``application.eventlog.Change``)."""

    @property
    def aggregate_id(self) -> UUID: ...

    @property
    def version(self) -> int: ...


def _base_version(aggregate: Aggregate) -> int:
    return aggregate.version - len(aggregate.pending_events)
