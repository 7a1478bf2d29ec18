"""Decide a batch of commands and commit all their events in one transaction.

This is the write path of the ledger. Commands run in order against
cached aggregates (so the hundredth fee into the treasury in a batch sees
the ninety-nine before it, with no database round trip), and the batch's
events are stored in one atomic save with optimistic concurrency on every
aggregate's version.

What can go wrong, and what happens:

- A command is refused: it gets its error; having checked before changing,
  it left no trace, and the rest of the batch goes on.
- A command changed aggregates and then failed (an atomic batch whose
  tenth item is refused, or a bug): the batch runs again without it, so
  nothing it did survives. An atomic batch decides on copies of cached
  aggregates (``guarded_cache``), so the cache needs nothing reloaded after
  it fails; what the failure costs the others is ``attempts``' to bound: one
  re-decide at most, none of their retry budget, later atomic batches sent
  on to the next group.
- Another process wrote an aggregate we hold (version conflict on save):
  the aggregates are reloaded and the batch runs again, this time asking
  the store whether each new id is really new. Nothing is lost or doubled:
  the losing transaction wrote nothing. Each command in the attempt spends
  one retry of its own budget. An attempt with a command that lost twice
  runs under the store's writer turn (for that attempt only), during which
  no other process commits, so a hot account shared by several processes
  cannot starve one of them.
- A commit's lock wait timed out behind another process's long commit: the
  store is healthy; it costs what a lost commit costs (``contention``).
- The store is down: every command in the batch is answered "unavailable"
  and none was applied.

Before each batch the processor reads which aggregates other processes
changed since it last looked (ids and versions only) and drops those from
its cache, so a refusal is never based on a stale balance.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, PersistenceError

from application.alerts import STORE_ALERT_KEY, AlertKind, raise_alert
from application.authority import undeclared_debits
from application.commands import Command
from application.errors import InternalError, LedgerUnavailable
from application.eventlog.commits import CommitBoundaries
from application.eventlog.decoder import EventDecoder
from application.handlers import decide
from application.handlers.rules import DEFAULT_RULES, Rules
from application.handlers.session import AggregateSession
from application.outcomes import EventRef, Outcome
from application.write.aggregate_cache import AggregateCache
from application.write.attempts import GroupAnswer, GroupAttempts, can_fail_midway
from application.write.contention import is_lock_timeout
from application.write.event_store import LedgerApplication
from application.write.guarded_cache import GuardedCache
from domain.account import Account
from domain.errors import InvalidRequest, LedgerError
from domain.pricing import PriceSchedule
from domain.provenance import Provenance, stamp

logger = logging.getLogger(__name__)

Result = Outcome | LedgerError
CONFLICT_RETRIES_MAX = 30
OPTIMISTIC_ATTEMPTS = 2
"""Attempts without the writer turn; the ones after hold it."""
CONFLICT_BACKOFF_S_MAX = 0.05
SNAPSHOT_INTERVAL = 500
CHANGES_BEFORE_CLEAR_MAX = 50_000
_SNAPSHOTTED_TYPES = (Account, PriceSchedule)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _StaleView(IntegrityError):
    """The batch read aggregates at two moments with a commit in between:
    it goes the way of a lost commit (decided again, then under the turn)."""


class _Poisoned(Exception):
    """A command changed aggregates and then failed."""

    def __init__(self, index: int, error: LedgerError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


@dataclass
class _Decided:
    results: list[Result | None]
    events: list[Any]
    ends: list[int | None]
    """Per command that wrote events: the index of its last event."""
    replay_refs: dict[int, tuple[EventRef, ...]]
    """Per command that wrote nothing: the stored events its answer names."""


class CommandProcessor:
    def __init__(
        self,
        app: LedgerApplication,
        *,
        cache: AggregateCache | None = None,
        clock: Callable[[], datetime] = utc_now,
        rules: Rules = DEFAULT_RULES,
    ) -> None:
        self.app = app
        self.cache = cache if cache is not None else AggregateCache()
        self.clock = clock
        self.rules = rules
        self._lock = threading.Lock()
        self._seen_position = app.event_log.head()
        self._commits = CommitBoundaries(app.event_log, EventDecoder(app.mapper))
        self.conflicts = 0
        self.turns_taken = 0
        self.lock_waits_timed_out = 0

    def process(
        self, commands: Sequence[Command], provenance: Provenance | None = None
    ) -> list[Result]:
        """Decide and commit ``commands``, every one answered: what a group
        sends on (``attempts``) is decided in the next group, here. Their
        events record ``provenance`` (all asked by the same)."""
        results: list[Result | None] = [None] * len(commands)
        spent = [0] * len(commands)
        waiting = list(range(len(commands)))
        while waiting:
            answer = self.process_group([commands[i] for i in waiting], [spent[i] for i in waiting],
                                        provenances=[provenance] * len(waiting))
            for index, result, used in zip(waiting, answer.results, answer.spent, strict=True):
                results[index], spent[index] = result, used
            waiting = [index for index in waiting if results[index] is None]
        return [result for result in results if result is not None]

    def process_group(
        self, commands: Sequence[Command], spent: Sequence[int] | None = None,
        provenances: Sequence[Provenance | None] | None = None,
    ) -> GroupAnswer:
        """Decide ``commands`` as one group and commit them in one
        transaction; a command may be sent on to the next group (its result
        None). ``spent`` is each command's retry budget spent before;
        ``provenances`` who asked for each, which its events record."""
        with self._lock:
            return self._process_group(GroupAttempts(commands, spent),
                                       provenances or [None] * len(commands))

    def _process_group(
        self, attempts: GroupAttempts, provenances: Sequence[Provenance | None]
    ) -> GroupAnswer:
        verify = False
        while True:
            try:
                with self._turn(attempts):
                    self._refresh_cache()
                    return attempts.answer(self._attempt(attempts.commands, provenances,
                                                         attempts.skipped(), verify))
            except _Poisoned as poisoned:
                if not attempts.refused_midway(poisoned.index, poisoned.error):
                    return attempts.answer()
            except IntegrityError:
                self.conflicts += 1
                verify = True
                if not attempts.lost_commit(CONFLICT_RETRIES_MAX):
                    self.cache.clear()
                    return attempts.answer()
                backoff = min(attempts.conflicts_in_a_row() - 1, 4) / 4
                time.sleep(random.uniform(0, CONFLICT_BACKOFF_S_MAX) * backoff)  # noqa: S311
            except PersistenceError as error:
                if is_lock_timeout(error):
                    if not self._contended(attempts):
                        return attempts.answer()
                    continue
                logger.warning("event store unavailable: %s", type(error).__name__)
                raise_alert(AlertKind.STORE_UNREACHABLE, "the event store refused a commit",
                            dedup_key=STORE_ALERT_KEY, seen_by="writer",
                            error=type(error).__name__,
                            commands=len(attempts.commands))
                return self._unavailable(attempts, "the event store is unavailable")

    def _contended(self, attempts: GroupAttempts) -> bool:
        """A lock wait timed out behind another process's commit: the store
        is healthy and nothing was written, so it costs what a lost commit
        costs (one retry of each command's budget; after two, the writer
        turn), never an outage answer or alert. Says whether to go on."""
        self.lock_waits_timed_out += 1
        logger.info("commit waited out its lock timeout; deciding again")
        return attempts.lost_commit(CONFLICT_RETRIES_MAX)

    def _turn(self, attempts: GroupAttempts) -> AbstractContextManager[None]:
        """The writer turn for an attempt with a command that lost its commit
        ``OPTIMISTIC_ATTEMPTS`` times; held for that one attempt only, so a
        group decided again for refusals never holds it across them."""
        if not attempts.wants_turn(OPTIMISTIC_ATTEMPTS):
            return nullcontext()
        self.turns_taken += 1
        attempts.turns += 1
        return self.app.writer_turn()

    def _unavailable(self, attempts: GroupAttempts, message: str) -> GroupAnswer:
        """Every command not answered yet, those sent on included, is
        answered ``unavailable``: nothing of the group was applied."""
        self.cache.clear()
        error = LedgerUnavailable(f"{message}; the command was not applied, retry it")
        for index in range(len(attempts.commands)):
            attempts.answered.setdefault(index, error)
        attempts.sent_on.clear()
        return attempts.answer()

    def _attempt(
        self, commands: Sequence[Command], provenances: Sequence[Provenance | None],
        excluded: dict[int, LedgerError | None], verify: bool,
    ) -> list[Result | None]:
        guarded = GuardedCache(self.cache)
        session = AggregateSession(self.app.load, guarded, verify_new_ids=verify,
                                   rules=self.rules)
        try:
            decided = self._decide_all(commands, provenances, excluded, session, guarded)
            self._check_one_view(session)
            positions = self._commit(decided, session)
        except BaseException as error:
            # After a refusal midway, what the cache holds is unchanged where
            # the refused command only ever had copies (``guarded_cache``).
            kept = guarded.copied if isinstance(error, _Poisoned) else set()
            for aggregate_id in session.touched:
                if aggregate_id not in kept:
                    self.cache.evict(aggregate_id)
            raise
        for aggregate in session.touched.values():
            self.cache.put(aggregate)
        self._snapshot(decided.events, session)
        return self._answers(decided, positions)

    def _decide_all(
        self, commands: Sequence[Command], provenances: Sequence[Provenance | None],
        excluded: dict[int, LedgerError | None], session: AggregateSession,
        guarded: GuardedCache,
    ) -> _Decided:
        now = self.clock()
        decided = _Decided([None] * len(commands), [], [None] * len(commands), {})
        for index, command in enumerate(commands):
            if index in excluded:
                decided.results[index] = excluded[index]
                continue
            guarded.guarding = can_fail_midway(command)
            result = self._decide_one(index, command, session, now)
            guarded.guarding = False
            decided.results[index] = result
            if isinstance(result, Outcome):
                new_events = session.command_events()
                _check_declared_debits(index, command, new_events)
                stamp(new_events, provenances[index])
                if new_events:
                    decided.ends[index] = len(decided.events) + len(new_events) - 1
                else:
                    decided.replay_refs[index] = result.answered_by or _replay_ref(session)
                decided.events.extend(new_events)
        return decided

    def _decide_one(
        self, index: int, command: Command, session: AggregateSession, now: datetime
    ) -> Result:
        session.begin_command()
        try:
            return decide(command, session, now)
        except LedgerError as error:
            if session.command_changed_anything():
                raise _Poisoned(index, error) from error
            return self._recheck_refusal(index, command, session, now, error)
        except PersistenceError:
            raise
        except Exception as error:
            logger.exception("command %s failed with a bug", command.kind)
            raise _Poisoned(index, InternalError("internal error; not applied")) from error

    def _recheck_refusal(
        self, index: int, command: Command, session: AggregateSession, now: datetime,
        error: LedgerError,
    ) -> Result:
        """A command refused while its id was only assumed new may be a retry
        of one that succeeded: decide it again, asking the store."""
        if not session.assumed_new:
            return error
        session.verify_new_ids = True
        try:
            session.begin_command()
            return decide(command, session, now)
        except LedgerError as second_error:
            if session.command_changed_anything():
                raise _Poisoned(index, second_error) from second_error
            return second_error
        finally:
            session.verify_new_ids = False

    def _check_one_view(self, session: AggregateSession) -> None:
        """Every command decides on one view of what it reads. The cache is
        known current at ``_seen_position``; an aggregate loaded since may be
        newer, so if another process committed meanwhile to anything the
        batch read (a hold and its account, say), the batch is decided
        again, exactly as if its commit had lost: no refusal (a 404 for a
        hold that exists) is based on two moments at once."""
        if not session.loaded or self.app.event_log.head() <= self._seen_position:
            return
        changes = self.app.event_log.changes_after(self._seen_position, CHANGES_BEFORE_CLEAR_MAX)
        if len(changes) >= CHANGES_BEFORE_CLEAR_MAX or session.read_stale(changes):
            raise _StaleView("another process changed what the batch read; deciding again")

    def _commit(self, decided: _Decided, session: AggregateSession) -> list[int]:
        events = decided.events
        uncommitted = sum(len(aggregate.pending_events) for aggregate in session.touched.values())
        if uncommitted != len(events):
            raise InternalError(f"batch bookkeeping lost events ({uncommitted} != {len(events)})")
        for aggregate in session.touched.values():
            aggregate.pending_events.clear()
        if not events:
            return []
        try:
            recordings = self.app.events.put(events)
        except (ValueError, TypeError) as error:
            # Encoding comes before any write, and the store's own failures
            # are PersistenceErrors: this is one command's event that cannot
            # be encoded. It must fail alone, never its batch-mates.
            raise self._unencodable(decided) from error
        positions = [recording.notification.id for recording in recordings]
        self._advance_seen(positions)
        return positions

    def _unencodable(self, decided: _Decided) -> _Poisoned:
        """The first command whose events cannot be encoded, refused midway
        (the batch is decided again without it); a bug if none is found."""
        start = 0
        for index, end in enumerate(decided.ends):
            if end is None:
                continue
            try:
                for event in decided.events[start:end + 1]:
                    self.app.mapper.to_stored_event(event)
            except (ValueError, TypeError):
                logger.warning("command %d of a batch has events that cannot be encoded", index)
                return _Poisoned(index, InvalidRequest(
                    "the command holds text that cannot be stored (a lone UTF-16 "
                    "surrogate?); it was not applied"))
            start = end + 1
        return _Poisoned(0, InternalError("internal error; the batch could not be encoded"))

    def _answers(self, decided: _Decided, positions: list[int]) -> list[Result | None]:
        """Each command's outcome at the position where the commit holding
        its events ends (one group commit holds many commands, and a state
        at a position means whole commits: ``at=<position>`` includes the
        command); None for one not decided (sent on to the next group)."""
        answers: list[Result | None] = []
        in_batch: set[EventRef] | None = None  # only replays need it
        for index, result in enumerate(decided.results):
            if isinstance(result, Outcome):
                if decided.ends[index] is not None:
                    result = result.at(positions[-1])
                else:
                    if in_batch is None:
                        in_batch = {(event.originator_id, event.originator_version)
                                    for event in decided.events}
                    refs = decided.replay_refs[index]
                    result = result.at(self._replay_position(refs, in_batch, positions))
            answers.append(result)
        return answers

    def _replay_position(
        self, refs: tuple[EventRef, ...], in_batch: set[EventRef], positions: list[int]
    ) -> int:
        """A repeat's position, the first answer's: the end of the commit
        that holds the latest of the events its answer names (this group's,
        or one found in the store from that event)."""
        if positions and any(ref in in_batch for ref in refs):
            return positions[-1]
        latest = self.app.event_log.latest_position_of(refs) if refs else None
        if latest is None:
            return self.app.event_log.head()
        return self._commits.end_of(latest)

    def _advance_seen(self, positions: list[int]) -> None:
        """Our own contiguous positions right after the last seen one mean
        nobody else wrote in between; otherwise the next refresh looks."""
        if positions[0] == self._seen_position + 1 and positions[-1] - positions[0] == len(positions) - 1:
            self._seen_position = positions[-1]

    def _refresh_cache(self) -> None:
        latest = self.app.event_log.head()
        if latest <= self._seen_position:
            return
        changes = self.app.event_log.changes_after(self._seen_position, CHANGES_BEFORE_CLEAR_MAX)
        if len(changes) >= CHANGES_BEFORE_CLEAR_MAX:
            self.cache.clear()
            self._seen_position = latest
            return
        for change in changes:
            cached = self.cache.version_of(change.aggregate_id)
            if cached is not None and cached < change.version:
                self.cache.evict(change.aggregate_id)
        if changes:
            self._seen_position = changes[-1].position

    def _snapshot(self, events: list[Any], session: AggregateSession) -> None:
        """Keep reloading a hot account cheap: a snapshot every few hundred
        events. A snapshot is derived data, so failing to write one is fine."""
        crossed: dict[UUID, Aggregate] = {}
        for event in events:
            if event.originator_version % SNAPSHOT_INTERVAL == 0:
                aggregate = session.touched.get(event.originator_id)
                if isinstance(aggregate, _SNAPSHOTTED_TYPES):
                    crossed[aggregate.id] = aggregate
        for aggregate in crossed.values():
            try:
                self.app.take_snapshot_of(aggregate)
            except PersistenceError:
                logger.warning("snapshot of %s skipped: store unavailable", aggregate.id)


def _check_declared_debits(index: int, command: Command, events: list[Any]) -> None:
    """A command whose events debit an account it did not declare is a bug:
    refused (nothing it did survives), logged, never committed."""
    undeclared = undeclared_debits(command, events)
    if undeclared:
        logger.error("command %s debited %s, which its debits() does not declare",
                     command.kind, ", ".join(map(str, undeclared)))
        raise _Poisoned(index, InternalError(
            f"internal error: {command.kind} debits an account it does not declare; not applied"))


def _replay_ref(session: AggregateSession) -> tuple[EventRef, ...]:
    """An internal command's repeat: its primary aggregate's latest event."""
    if session.primary is None or session.primary not in session.touched:
        return ()
    return ((session.primary, session.touched[session.primary].version),)

