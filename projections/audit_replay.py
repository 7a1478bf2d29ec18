"""Audit replay: fold the stored log into fresh in-memory state with the
projection's own fold and compare it with every read model, the Redis cache
and the hash-chain checkpoints. One code path serves ``deals-ledger replay``
and ``POST /v1/audit/replay`` (through ``ReadModelQueries.audit_replay``).

The read models are read in one snapshot (a REPEATABLE READ transaction on
PostgreSQL, a read transaction on SQLite), at their tracking position R:

- history rows are compared page by page as the replay passes them, up to
  the replay's cut or R, whichever is lower; since each row carries the
  balance before and after, this also checks every point-in-time balance;
- when the replay ends exactly at R (no cut given, or a cut at R), every
  current-state model (balances, transactions, holds, wallets, price rules)
  and the Redis cache are compared row by row;
- conservation is checked on the replayed state: all balances sum to zero,
  and no account but issuance and external has a negative available balance;
- the hash chain over the stored events is recomputed and walked against
  the checkpoints, reporting the first tampered position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import fields
from datetime import datetime
from itertools import chain
from typing import Any

from application.eventlog.decoder import EventDecoder
from application.eventlog.read_ahead import pages_read_ahead
from application.eventlog.reader import EventLog, LogEvent
from application.eventlog.seal_check import UnauthenticatedEvent, sealed_pages
from domain.account import ISSUANCE, MAY_GO_NEGATIVE
from domain.amounts import format_amount
from projections.balance_cache import BalanceCache
from projections.gc_pacing import bulk_fold_pacing
from projections.hashchain import ChainVerifier
from projections.ledger_fold import FoldState, LedgerFold, PageChanges
from projections.queries import Mismatch, ReplayReport
from projections.read_model_store import ReadModelStore
from projections.rows import (
    BalanceRow,
    HistoryRow,
    HoldRow,
    PriceRuleDeactivationRow,
    PriceRuleRow,
    TransactionRow,
    WalletRow,
    columns,
    values_of,
)
from projections.times import from_micros, micros, to_micros, utc_text

logger = logging.getLogger(__name__)

MISMATCHES_MAX = 1000
REPLAY_PAGE_EVENTS_DEFAULT = 5000


class _Mismatches:
    def __init__(self) -> None:
        self.items: list[Mismatch] = []
        self.dropped = 0

    def add(self, model: str, key: str, expected: object, actual: object) -> None:
        if len(self.items) < MISMATCHES_MAX:
            self.items.append(Mismatch(model, key, str(expected), str(actual)))
        else:
            self.dropped += 1

    def result(self) -> list[Mismatch]:
        if self.dropped:
            return [*self.items, Mismatch("report", "truncated", "", f"{self.dropped} more")]
        return self.items


class AuditReplay:
    def __init__(
        self, log: EventLog, decoder: EventDecoder, store: ReadModelStore, *,
        cache: BalanceCache | None = None, page_events: int = REPLAY_PAGE_EVENTS_DEFAULT,
        progress_line: Callable[[int], None] | None = None,
    ) -> None:
        self.log = log
        self.decoder = decoder
        self.store = store
        self.cache = cache
        self.page_events = page_events
        self.progress_line = progress_line

    def run(self, *, until_position: int | None = None, until: datetime | None = None
            ) -> ReplayReport:
        with bulk_fold_pacing():
            return self._run(until_position, until)

    def _run(self, until_position: int | None, until: datetime | None) -> ReplayReport:
        mismatches = _Mismatches()
        with self._snapshot() as cursor:
            model_position = self.store.tracking.position(cursor)
            cut = until_position if until_position is not None else (
                model_position if until is None else self.log.head())
            verifier = ChainVerifier(
                _entries(self.store.checkpoints(cursor, upto=cut)),
                self.store.last_checkpointed(cursor),
            )
            state, rules, replayed, last = self._fold(
                cursor, cut, until, model_position, verifier, mismatches)
            verifier.finish(last if until is not None else cut)
            if last == model_position:
                self._compare_state(cursor, state, mismatches)
                for row_type in (PriceRuleRow, PriceRuleDeactivationRow):
                    _compare(row_type.TABLE,
                             {r.key: r for r in rules if type(r) is row_type},
                             {r.key: r for r in self.store.all_rows(cursor, row_type)},
                             mismatches)
                self._compare_cache(state, model_position, mismatches)
            elif last > model_position:
                mismatches.add("read_models", "position", last, model_position)
        self._check_seals_after(last, mismatches)
        supply_ok, supply = self._conservation(state, mismatches)
        if verifier.first_tampered is not None:
            mismatches.add("event_log", f"position {verifier.first_tampered}",
                           "as checkpointed by the projector", verifier.detail)
        return ReplayReport(
            events_replayed=replayed, accounts=len(state.balances), supply_ok=supply_ok,
            supply=supply, last_position=last, mismatches=mismatches.result(),
            first_tampered_position=verifier.first_tampered,
        )

    def _check_seals_after(self, last: int, mismatches: _Mismatches) -> None:
        """Events past the replayed cut are not replayed, but one no seal
        vouches for is named all the same: the projector stops before it,
        so the read models' position (the usual cut) never reaches it."""
        if getattr(self.log, "seal_keys", None) is None:
            return
        read = sealed_pages(self.log, self.log.read)
        while True:
            try:
                events = read(last, self.page_events)
            except UnauthenticatedEvent as refused:
                mismatches.add("event_log", f"position {refused.position}",
                               "authenticated by a commit seal", refused.why)
                return
            if not events:
                return
            last = events[-1].position

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        snapshot = getattr(self.store, "snapshot", None)
        with (snapshot() if snapshot is not None else self.store.read()) as cursor:
            yield cursor

    def _fold(
        self, cursor: Any, cut: int, until: datetime | None, model_position: int,
        verifier: ChainVerifier, mismatches: _Mismatches,
    ) -> tuple[FoldState, list[PriceRuleRow | PriceRuleDeactivationRow], int, int]:
        state = FoldState()
        rules: list[PriceRuleRow | PriceRuleDeactivationRow] = []
        fold = LedgerFold(state, self.decoder)
        until_micros = None if until is None else to_micros(until)
        replayed = last = 0
        read = sealed_pages(self.log, lambda after, limit: self.log.read(after, limit, upto=cut))
        with closing(pages_read_ahead(read, last, self.page_events)) as pages:
            while last < cut:
                try:
                    events = next(pages, [])
                except UnauthenticatedEvent:
                    break  # named by _check_seals_after, which reads on from here
                if until_micros is not None:
                    events = self._before(events, until_micros)
                if not events:
                    break
                previous, last = last, events[-1].position
                replayed += len(events)
                rules.extend(self._fold_page(cursor, fold, events, previous, min(
                    last, model_position), verifier, mismatches))
                if until_micros is not None and len(events) < self.page_events and last < cut:
                    break
        return state, rules, replayed, last

    def _fold_page(
        self, cursor: Any, fold: LedgerFold, events: list[LogEvent], after: int, upto: int,
        verifier: ChainVerifier, mismatches: _Mismatches,
    ) -> list[PriceRuleRow | PriceRuleDeactivationRow]:
        """Fold one page, extend the hash chain over it and compare its
        history rows up to ``upto``; the page's price rule rows."""
        changes = fold.apply(events)
        verifier.feed(events)
        for violation in changes.violations:
            mismatches.add("invariants", violation.split(":")[0], "rule holds", violation)
        self._compare_history(cursor, after, upto, changes, mismatches)
        if self.progress_line is not None:
            self.progress_line(events[-1].position)
        return [*changes.price_rules, *changes.price_rule_deactivations]

    def _before(self, events: list[LogEvent], until_micros: int) -> list[LogEvent]:
        """The events up to the first one stamped after ``until``."""
        for index, event in enumerate(events):
            try:
                stamp = micros(self.decoder.timestamp(event.state))
            except Exception:  # noqa: S112 - a damaged row: replayed, the fold reports it
                continue
            if stamp is not None and stamp > until_micros:
                return events[:index]
        return events

    def _compare_history(
        self, cursor: Any, after: int, upto: int, changes: PageChanges, mismatches: _Mismatches
    ) -> None:
        if upto <= after:
            return
        expected = {row.position: row for row in changes.history if row.position <= upto}
        _compare_stored(HistoryRow, expected,
                        self.store.history_values_between(cursor, after, upto), mismatches)

    def _compare_state(self, cursor: Any, state: FoldState, mismatches: _Mismatches) -> None:
        for row_type, expected in (
            (BalanceRow, state.balances), (TransactionRow, state.transactions),
            (HoldRow, state.holds), (WalletRow, state.wallets),
        ):
            _compare_stored(row_type, expected, self.store.all_values(cursor, row_type),
                            mismatches)

    def _compare_cache(self, state: FoldState, model_position: int, mismatches: _Mismatches
                       ) -> None:
        if self.cache is None:
            return
        rows = list(state.balances.values())
        try:
            head = self.log.head()
            incarnation = self.cache.current_incarnation()
            for start in range(0, len(rows), 1000):
                batch = rows[start:start + 1000]
                pipe = self.cache.client.pipeline(transaction=False)
                for row in batch:
                    pipe.hmget(self.cache.key(row.account_id), "p", "b", "h", "l")
                for row, (p, b, h, bound) in zip(batch, pipe.execute(), strict=True):
                    if bound is None or bound.decode() != incarnation:
                        continue  # another ledger's or incarnation's: never read
                    _compare_entry(row, p, b, h, model_position, head, mismatches)
        except Exception as error:  # Redis down is not a finding about the data
            logger.warning("audit replay could not read the Redis cache: %s", error)

    @staticmethod
    def _conservation(state: FoldState, mismatches: _Mismatches) -> tuple[bool, int]:
        total = sum(row.balance for row in state.balances.values())
        supply = -sum(row.balance for row in state.balances.values() if row.kind == ISSUANCE)
        ok = total == 0
        if not ok:
            mismatches.add("supply", "sum of all balances", "0", format_amount(total))
        for row in state.balances.values():
            if row.kind not in MAY_GO_NEGATIVE and row.balance - row.held < 0:
                ok = False
                mismatches.add("supply", f"available of {row.account_id}", ">= 0",
                               format_amount(row.balance - row.held))
        return ok, supply


def _entries(checkpoints: Iterable[Any]) -> Iterator[tuple[int, bytes]]:
    return chain.from_iterable(checkpoint.entries() for checkpoint in checkpoints)


AMOUNT_FIELDS = frozenset({"balance", "held", "amount", "change", "balance_before",
                           "balance_after", "token_cost"})
"""Row fields holding amounts: a mismatch shows them in DEAL, as every answer
does (base units only in fields named ``*_units``)."""


def _shown(field_name: str, value: Any) -> Any:
    """A row field's value as answers show it: amounts as decimal DEAL,
    times (microseconds in the read models) as RFC 3339 with ``Z``."""
    if type(value) is not int:
        return value
    if field_name in AMOUNT_FIELDS:
        return format_amount(value)
    if field_name.endswith("_at") or field_name in ("valid_from", "valid_to"):
        return utc_text(from_micros(value))
    return value


def _compare(model: str, expected: dict[Any, Any], actual: dict[Any, Any],
             mismatches: _Mismatches) -> None:
    for key, row in expected.items():
        other = actual.get(key)
        if other is None:
            mismatches.add(model, str(key), "present", "missing")
        elif other != row:
            for field in fields(row):
                mine, theirs = getattr(row, field.name), getattr(other, field.name)
                if mine != theirs:
                    mismatches.add(model, f"{key}.{field.name}", _shown(field.name, mine),
                                   _shown(field.name, theirs))
    for key in actual.keys() - expected.keys():
        mismatches.add(model, str(key), "absent", "present")


def _compare_stored(row_type: Any, expected: dict[Any, Any], stored: Iterable[tuple[Any, ...]],
                    mismatches: _Mismatches) -> None:
    """``_compare`` of the fold's rows with a table's stored tuples (as
    ``all_values`` reads them, in key order): when the two agree in that
    order, as they do unless something is wrong, one list comparison says
    so; otherwise a row object is built only for a stored row that differs."""
    stored = list(stored)
    values = values_of(row_type)
    if len(stored) == len(expected) and stored == [values(expected[key]) for key in sorted(expected)]:
        return
    at = columns(row_type).index(row_type.KEY[0])
    actual = {row[at]: row for row in stored}
    differing: dict[Any, tuple[Any, ...] | None] = {}
    for key, row in expected.items():
        other = actual.pop(key, None)
        if other is None or values(row) != other:
            differing[key] = other
    _compare(row_type.TABLE, {key: expected[key] for key in differing},
             {key: row_type(*other) for key, other in differing.items() if other is not None},
             mismatches)
    for key in actual:
        mismatches.add(row_type.TABLE, str(key), "absent", "present")


def _compare_entry(row: BalanceRow, p: Any, b: Any, h: Any, model_position: int, head: int,
                   mismatches: _Mismatches) -> None:
    if p is None:
        return  # not cached: reads go to SQL
    position = int(p)
    if position > head:
        mismatches.add("redis_cache", f"{row.account_id}.position", f"<= {head}", position)
        return
    if position > model_position:
        return  # written after the snapshot
    if position < row.position:
        mismatches.add("redis_cache", f"{row.account_id}.position", row.position, position)
    elif (int(b), int(h)) != (row.balance, row.held):
        mismatches.add("redis_cache", row.account_id, _balance_held(row.balance, row.held),
                       _balance_held(int(b), int(h)))


def _balance_held(balance: int, held: int) -> str:
    return f"balance {format_amount(balance)}, held {format_amount(held)}"

