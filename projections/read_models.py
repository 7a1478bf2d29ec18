"""``ReadModelQueries``: the ``LedgerQueries`` the HTTP API and the CLI use.

Every answer comes from the read models (and the Redis cache for plain
balance reads), never from aggregates; ``audit_events`` reads the stored
log. Each query first works out the position it must reflect (``plan``:
the log's head for a consistent read, one round trip) and waits until the
read models have applied it (``reach``, awaited without a thread; or a
blocking wait for the CLI), then reads rows and the read models' tracking
position in one snapshot, which is the ``position`` the answer carries.

Lists page by keyset on the log position (``position > cursor ORDER BY
position LIMIT n``, on an ``(account, position)`` index), so the thousandth
page of an account with a million rows costs what the first does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.eventlog.commits import CommitBoundaries
from application.eventlog.decoder import EventDecoder
from application.eventlog.reader import EventLog, LogEvent
from domain import provenance
from domain.errors import AccountNotFound, InvalidRequest, TransferNotFound
from domain.pricing import PRICES_DEFAULT, SERVICE_TYPES, active_rules, check_service_type
from domain.transfer import EXPIRED, PENDING, POSTED, client_status, settlement_when_hold_closes
from projections.account_reads import account_row, account_rows, accounts_after, accounts_cursor
from projections.balance_cache import BalanceCache, CachedBalance, CacheRead
from projections.cursors import BY_EXTERNAL_REF, reference_key
from projections.decoded_fields import decoded_fields
from projections.listing_filters import ASCENDING, ListingFilter
from projections.progress import Progress
from projections.queries import (
    MIN_POSITION_WAIT_S,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    AccountFilter,
    AccountView,
    BalanceView,
    Consistency,
    EventsPage,
    HistoryEntry,
    Listing,
    Page,
    PositionPastHead,
    PriceRuleView,
    RawEvent,
    ReadModelBehind,
    ReadPoint,
    ReplayReport,
    ServicePriceView,
    TransactionView,
    WalletView,
)
from projections.read_model_store import ReadModelStore
from projections.rows import TransactionRow, columns
from projections.times import from_micros, micros, to_micros

_POLL_S = 0.05
UNTIL_EITHER = "replay until a position (until_position) or until a time (until), not both"
AUDIT_WAIT_S_MIN = 30.0
"""An audit replay compares the read models at the log's head: it waits
longer for them than a query does."""
_TRACKING = "(SELECT notification_id FROM {tracking} WHERE application_name = ?)"
_TX_COLUMNS = ", ".join(columns(TransactionRow))
_HISTORY = (
    "SELECT h.transfer_id, h.change, h.balance_before, h.balance_after, h.type, h.reason, "
    "h.created_at, h.position, h.requested_by, h.request_id, t.metadata, t.external_ref, "
    "t.reward_type FROM {balance_history} h "
    "LEFT JOIN {transactions} t ON t.transfer_id = h.transfer_id")
"""A balance change with its movement's references, read from the movement's
row (written in the same projection commit), so history rows need no copy."""
_PRICE_RULES = ("SELECT r.service_type, r.token_cost, r.valid_from, r.valid_to, r.set_at, "
                "r.requested_by, r.request_id, r.position, d.deactivated_at, d.requested_by, "
                "d.request_id FROM {price_rules} r "
                "LEFT JOIN {price_rule_deactivations} d ON d.rule_position = r.position ")
_BALANCE_NOW = (
    f"SELECT b.balance, b.held, b.position, {_TRACKING}, "  # noqa: S608 - fixed names
    "(SELECT COALESCE(SUM(h.amount), 0) FROM {holds} h WHERE h.account_id = b.account_id "
    "AND h.status = 'pending' AND h.expires_at <= ?), "
    "(SELECT MIN(h.expires_at) FROM {holds} h WHERE h.account_id = b.account_id "
    "AND h.status = 'pending') FROM {balances} b WHERE b.account_id = ?"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _check_position(name: str, position: int | None) -> None:
    if position is not None and (type(position) is not int or position < 0):
        raise InvalidRequest(f"{name} must be a non-negative integer")


def _check_limit(limit: int) -> int:
    if type(limit) is not int or not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidRequest(f"limit must be an integer from 1 to {PAGE_SIZE_MAX}")
    return limit


def _uuid(hex_id: str | None) -> UUID | None:
    return None if hex_id is None else UUID(hex=hex_id)


def _time(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


@dataclass(frozen=True)
class _Axis:
    """Where a point in the past is measured: log positions or event times
    (column names of the read models, never user input)."""

    opened_index: int  # in (opened_position, opened_at)
    history: str
    history_order: str
    hold_placed: str
    hold_closed: str


_BY_POSITION = _Axis(0, "position", "position DESC", "placed_position", "closed_position")


class ReadModelQueries:
    def __init__(
        self,
        store: ReadModelStore,
        log: EventLog,
        decoder: EventDecoder,
        *,
        cache: BalanceCache | None = None,
        progress: Progress | None = None,
        clock: Callable[[], datetime] = utc_now,
        wait_s_max: float = MIN_POSITION_WAIT_S,
        replay_page_events: int = 5000,
    ) -> None:
        self.store = store
        self.log = log
        self.decoder = decoder
        self.commits = CommitBoundaries(log, decoder)
        self.cache = cache
        self.progress = progress or Progress()
        self.clock = clock
        self.wait_s_max = wait_s_max
        self.replay_page_events = replay_page_events

    # Consistency

    def position(self) -> int:
        """How far the read models have applied the log."""
        position = self.store.position()
        self.progress.advance(position)
        return position

    def position_at(self, moment: datetime) -> int:
        """The last whole commit at or before ``moment``: every query that
        takes a time asks at this position, so a time never names a state
        inside a commit and the answer's position, asked again, agrees."""
        if moment.tzinfo is None:
            raise InvalidRequest("a time must carry its offset")
        return self.commits.at_time(moment, self.log.head())

    def lag_events(self) -> int:
        """Events in the log the read models have not applied (for /ready)."""
        return max(0, self.log.head() - self.position())

    def plan(
        self, consistency: Consistency = Consistency.STRONG, min_position: int | None = None,
        at_position: int | None = None, at_name: str = "at",
    ) -> ReadPoint:
        """What a query must reflect (see ``ReadPoint``): one read of the
        log's head for a consistent read, none for an eventual read whose
        ``min_position`` is already known reached. A position past the head
        is refused at once; ``at_position`` is rounded down to a whole
        commit. Blocking: the HTTP API runs it in a thread, briefly."""
        _check_position("min_position", min_position)
        _check_position(at_name, at_position)
        consistency = Consistency(consistency)
        head = None
        if (consistency is Consistency.STRONG or at_position is not None
                or (min_position or 0) > self.progress.position):
            head = self.log.head()
            for name, asked in (("min_position", min_position), (at_name, at_position)):
                if asked is not None and asked > head:
                    raise PositionPastHead(name, asked, head)
        cut = None if at_position is None else self.commits.cut(at_position)
        floor = head if consistency is Consistency.STRONG else 0
        return ReadPoint(max(floor or 0, min_position or 0, cut or 0), head, cut)

    async def reach(self, point: ReadPoint, timeout_s: float | None = None) -> None:
        """Await the read models' progress to ``point.target`` without
        holding a thread; ``ReadModelBehind`` after the bound."""
        timeout_s = self.wait_s_max if timeout_s is None else timeout_s
        if not await self.progress.reached(point.target, timeout_s):
            raise self._behind(point.target, timeout_s)

    def settle(
        self, consistency: Consistency = Consistency.STRONG, min_position: int | None = None,
        at_position: int | None = None, timeout_s: float | None = None,
    ) -> ReadPoint:
        """``plan`` and a blocking wait (for the CLI and tests)."""
        point = self.plan(consistency, min_position, at_position)
        timeout_s = self.wait_s_max if timeout_s is None else timeout_s
        if not self.wait_for(point.target, timeout_s):
            raise self._behind(point.target, timeout_s)
        return point

    def wait_for(self, position: int, timeout_s: float | None = None) -> bool:
        """Block until the read models have applied ``position``; False if
        ``timeout_s`` (default ``wait_s_max``) passed first."""
        deadline = time.monotonic() + (self.wait_s_max if timeout_s is None else timeout_s)
        while True:
            if self.progress.position >= position or self.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Woken at once by a projector in this process; re-read the
            # store every _POLL_S for one in another process.
            self.progress.wait_past(position, min(remaining, _POLL_S))

    @staticmethod
    def _behind(position: int, timeout_s: float) -> ReadModelBehind:
        return ReadModelBehind(
            f"the read models have not reached position {position} within {timeout_s:g} s; retry"
        )

    def _point(self, point: ReadPoint | None, consistency: Consistency,
               min_position: int | None, at_position: int | None = None) -> ReadPoint:
        return point if point is not None else self.settle(consistency, min_position, at_position)

    def _tracked(self, cursor: Any) -> int:
        """The read models' position, in the reading snapshot."""
        return self.store.tracking.position(cursor)

    # Balances

    def balance(
        self, account_id: UUID, *, at_position: int | None = None, at_time: datetime | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None,
    ) -> BalanceView:
        """The balance now (Redis, else SQL), at a position (rounded down to
        a whole commit: ``point.cut``) or at a time; ``position`` is the log
        position whose state it reflects."""
        if at_position is not None and at_time is not None:
            raise InvalidRequest("ask for a balance at a position or at a time, not both")
        if at_time is not None:
            at_position, point = self.position_at(at_time), None
        point = self._point(point, consistency, min_position, at_position)
        if at_position is not None:
            assert point.cut is not None, "a point planned with at_position has its cut"
            return self._balance_at_position(account_id, point.cut)
        now = to_micros(self.clock())
        looked = self.cache.get(account_id.hex) if self.cache is not None else None
        cached = self._from_cache(looked, point, now)
        if cached is not None:
            return cached
        return self._balance_now(account_id, now, looked)

    def _from_cache(self, looked: CacheRead | None, point: ReadPoint, now: int
                    ) -> BalanceView | None:
        """The cached entry when it is this incarnation's, at least as new as
        ``point`` needs, not past the log's head and no hold in it may have
        expired."""
        if looked is None or looked.entry is None or not looked.entry.usable_at(now):
            return None
        entry = looked.entry
        if point.head is not None and entry.position > max(point.head, self.progress.position):
            return None  # past the head: another timeline's entry; SQL knows
        known = looked.covers(point.target)
        if known is None:
            return None
        return BalanceView(UUID(hex=entry.account_id), entry.balance, entry.held,
                           entry.balance - entry.held, known)

    def _balance_now(self, account_id: UUID, now: int, looked: CacheRead | None) -> BalanceView:
        with self.store.read() as cursor:
            cursor.execute(self.store.sql(_BALANCE_NOW),
                           (self.store.tracking_name, now, account_id.hex))
            row = cursor.fetchone()
        if row is None:
            raise AccountNotFound(f"account {account_id} does not exist")
        balance, held, changed, position, expired = (int(v) for v in row[:5])
        if self.cache is not None and looked is not None:
            entry = CachedBalance(account_id.hex, balance, held, changed, row[5])
            self.cache.fill(entry, looked.incarnation)
        held_now = held - expired
        return BalanceView(account_id, balance, held_now, balance - held_now, position)

    def _opened(self, cursor: Any, account_id: UUID) -> tuple[int, int]:
        cursor.execute(self.store.sql(
            "SELECT opened_position, opened_at FROM {balances} WHERE account_id = ?"
        ), (account_id.hex,))
        row = cursor.fetchone()
        if row is None:
            raise AccountNotFound(f"account {account_id} does not exist")
        return int(row[0]), int(row[1])

    def _balance_at_position(self, account_id: UUID, cut: int) -> BalanceView:
        """At a whole-commit ``cut``; holds judged at that commit's time, so
        the same question always gets the same answer."""
        stamp = self.commits.time_at(cut)
        moment = micros(stamp) if stamp is not None else 0
        view = self._balance_at(account_id, _BY_POSITION, cut, moment or 0,
                                f"at position {cut}")
        return replace(view, position=cut)

    def _balance_at(self, account_id: UUID, axis: _Axis, point: int, moment: int,
                    described: str) -> BalanceView:
        """The last balance change at or before ``point`` on ``axis``, and the
        holds open then that had not expired by ``moment``."""
        with self.store.read() as cursor:
            opened = self._opened(cursor, account_id)
            if opened[axis.opened_index] > point:
                raise AccountNotFound(f"account {account_id} did not exist {described}")
            cursor.execute(self.store.sql(
                f"SELECT balance_after, position FROM {{balance_history}} "  # noqa: S608
                f"WHERE account_id = ? AND {axis.history} <= ? "
                f"ORDER BY {axis.history_order} LIMIT 1"
            ), (account_id.hex, point))
            last = cursor.fetchone()
            cursor.execute(self.store.sql(
                f"SELECT COALESCE(SUM(amount), 0) FROM {{holds}} WHERE account_id = ? "  # noqa: S608
                f"AND {axis.hold_placed} <= ? "
                f"AND ({axis.hold_closed} IS NULL OR {axis.hold_closed} > ?) AND expires_at > ?"
            ), (account_id.hex, point, point, moment))
            held = int(cursor.fetchone()[0])
        return self._view_at(account_id, last, held, opened[0])

    @staticmethod
    def _view_at(account_id: UUID, last: Any, held: int, opened_position: int) -> BalanceView:
        balance, position = (0, opened_position) if last is None else (int(last[0]), int(last[1]))
        return BalanceView(account_id, balance, held, balance - held, position)

    # Lists

    def history(
        self, account_id: UUID, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None, listing: ListingFilter = ASCENDING,
    ) -> Page[HistoryEntry]:
        """The account's balance changes in ``listing``'s order and filters."""
        limit = _check_limit(limit)
        start = listing.start("history", cursor, account_id)
        self._point(point, consistency, min_position)
        where, params = listing.where("type", "h.", reward_type_column="t.reward_type")
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(  # column names only: the values are parameters
                f"{_HISTORY} WHERE h.account_id = ? AND {where} "
                f"ORDER BY {listing.sort_by('h.')} LIMIT ?"
            ), (account_id.hex, start, *params, limit + 1))
            rows = cur.fetchall()
            position = self._tracked(cur)
        items = [
            HistoryEntry(UUID(hex=r[0]), int(r[1]), int(r[2]), int(r[3]), r[4], r[5],
                         from_micros(int(r[6])), int(r[7]), r[8], r[9], _metadata(r[10]), r[11],
                         r[12])
            for r in rows[:limit]
        ]
        return Page(items, listing.next_cursor("history", account_id, items, len(rows) > limit),
                    position)

    def transactions(
        self, account_id: UUID, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None, listing: ListingFilter = ASCENDING,
    ) -> Page[TransactionView]:
        """The account's movements (either side) in ``listing``'s order and filters."""
        limit = _check_limit(limit)
        start = listing.start("transactions", cursor, account_id)
        self._point(point, consistency, min_position)
        where, params = listing.where("kind")
        side = (f"SELECT {_TX_COLUMNS} FROM {{transactions}} WHERE {{side}} = ? "  # noqa: S608
                f"AND {where} ORDER BY {listing.sort} LIMIT ?")
        # Two keyset range scans, one per index, merged: no OR, no OFFSET.
        both = (f"SELECT * FROM ({side.replace('{side}', 'source')}) s UNION ALL "  # noqa: S608
                f"SELECT * FROM ({side.replace('{side}', 'destination')}) d "
                f"ORDER BY {listing.sort} LIMIT ?")
        one = (account_id.hex, start, *params, limit + 1)
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(both), (*one, *one, limit + 1))
            rows = [TransactionRow(*r) for r in cur.fetchall()]
            position = self._tracked(cur)
        now = to_micros(self.clock())
        items = [self._transaction_view(row, now) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, listing.next_cursor("transactions", account_id, items, more),
                    position)

    def transfers_by_external_ref(
        self, external_ref: str, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        point: ReadPoint | None = None, listing: ListingFilter = ASCENDING,
    ) -> Page[TransactionView]:
        """The movements whose caller gave them ``external_ref``, in
        ``listing``'s order and filters. A list: the ledger does not make a
        reference unique (two commands may carry the same order's id), and
        pages of it are keyset pages on the ``(external_ref, position)``
        index, their cursors bound to the reference."""
        limit = _check_limit(limit)
        bound_to = reference_key(external_ref)
        start = listing.start(BY_EXTERNAL_REF, cursor, bound_to)
        self._point(point, Consistency.STRONG, None)
        where, params = listing.where("kind")
        with self.store.read() as cur:
            cur.execute(self.store.sql(
                f"SELECT {_TX_COLUMNS} FROM {{transactions}} WHERE external_ref = ? "  # noqa: S608
                f"AND {where} ORDER BY {listing.sort} LIMIT ?"
            ), (external_ref, start, *params, limit + 1))
            rows = [TransactionRow(*r) for r in cur.fetchall()]
            position = self._tracked(cur)
        now = to_micros(self.clock())
        items = [self._transaction_view(row, now) for row in rows[:limit]]
        return Page(items, listing.next_cursor(BY_EXTERNAL_REF, bound_to, items,
                                               len(rows) > limit), position)

    def transfer(
        self, transfer_id: UUID, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> TransactionView:
        self._point(point, consistency, min_position)
        with self.store.read() as cur:
            cur.execute(self.store.sql(
                f"SELECT {_TX_COLUMNS} FROM {{transactions}} WHERE transfer_id = ?"  # noqa: S608
            ), (transfer_id.hex,))
            row = cur.fetchone()
            position = self._tracked(cur)
        if row is None:
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        view = self._transaction_view(TransactionRow(*row), to_micros(self.clock()))
        return replace(view, as_of_position=position)

    @staticmethod
    def _transaction_view(row: TransactionRow, now: int) -> TransactionView:
        phase, status = row.phase, row.status
        if phase == PENDING and row.expires_at is not None and row.expires_at <= now:
            phase = EXPIRED  # due, not yet recorded by the sweeper: judged as it will be
            status = client_status(reversed_=row.reversed_by is not None, phase=phase,
                                   settlement=settlement_when_hold_closes(phase, row.settlement))
        hold_status = None if phase == POSTED else phase
        return TransactionView(
            transfer_id=UUID(hex=row.transfer_id), kind=row.kind, source=UUID(hex=row.source),
            destination=UUID(hex=row.destination), amount=row.amount, reason=row.reason,
            status=status, created_at=from_micros(row.created_at),
            updated_at=from_micros(row.updated_at), position=row.position,
            signature=row.signature, slot=row.slot, hold_status=hold_status,
            expires_at=_time(row.expires_at), reversed_by=_uuid(row.reversed_by),
            reverses=_uuid(row.reverses), requested_by=row.requested_by,
            request_id=row.request_id, external_ref=row.external_ref,
            metadata=_metadata(row.metadata), reward_type=row.reward_type,
        )

    def wallets(
        self, account_id: UUID, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> Listing[WalletView]:
        self._point(point, consistency, min_position)
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(
                "SELECT address, account_id, status, connected_at, disconnected_at "
                "FROM {wallets} WHERE account_id = ? ORDER BY connected_at, address LIMIT ?"
            ), (account_id.hex, PAGE_SIZE_MAX))
            rows = cur.fetchall()
            position = self._tracked(cur)
        return Listing([
            WalletView(r[0], UUID(hex=r[1]), r[2], from_micros(int(r[3])), _time(r[4]))
            for r in rows
        ], position)

    # Accounts

    def account(self, account_id: UUID, *, point: ReadPoint | None = None
                ) -> Listing[AccountView]:
        """One account with its balance summary and wallets, and the position
        whose state it reflects (a one-item listing)."""
        self._point(point, Consistency.STRONG, None)
        now = to_micros(self.clock())
        with self.store.read() as cur:
            view = account_row(self.store, cur, account_id, now)
            position = self._tracked(cur)
        return Listing([view], position)

    def accounts(
        self, accounts: AccountFilter, *, limit: int = PAGE_SIZE_DEFAULT,
        cursor: str | None = None, point: ReadPoint | None = None,
    ) -> Page[AccountView]:
        """Accounts in the order they were opened, filtered by kind and status."""
        limit, after = _check_limit(limit), accounts_after(cursor, accounts)
        self._point(point, Consistency.STRONG, None)
        now = to_micros(self.clock())
        with self.store.read() as cur:
            rows = account_rows(self.store, cur, accounts, after, limit + 1, now)
            position = self._tracked(cur)
        items = rows[:limit]
        return Page(items, accounts_cursor(items, len(rows) > limit, accounts), position)

    # Holds (for the expiry sweeper)

    def due_holds(self, now: datetime, limit: int = 1000) -> list[UUID]:
        """Pending holds whose expiry has passed, earliest first."""
        with self.store.read() as cur:
            cur.execute(self.store.sql(
                "SELECT hold_id FROM {holds} WHERE status = 'pending' AND expires_at <= ? "
                "ORDER BY expires_at LIMIT ?"
            ), (to_micros(now), _check_limit(limit)))
            return [UUID(hex=r[0]) for r in cur.fetchall()]

    # Pricing

    def pricing(
        self, now: datetime, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> Listing[ServicePriceView]:
        self._point(point, consistency, min_position)
        with self.store.read() as cur:
            cur.execute(self.store.sql(_PRICE_RULES + "ORDER BY r.position"))
            rows = cur.fetchall()
            position = self._tracked(cur)
        moment = to_micros(now)
        return Listing([_service_price(service_type, rows, moment)
                        for service_type in SERVICE_TYPES], position)

    def service_pricing(
        self, service_type: str, now: datetime, *, point: ReadPoint | None = None,
    ) -> Listing[ServicePriceView]:
        """One service type's price now and every rule it was given, each
        saying whether it can still decide a price."""
        self._point(point, Consistency.STRONG, None)
        with self.store.read() as cur:
            cur.execute(self.store.sql(_PRICE_RULES + "WHERE r.service_type = ? "
                                             "ORDER BY r.position"),
                        (check_service_type(service_type),))
            rows = cur.fetchall()
            position = self._tracked(cur)
        return Listing([_service_price(service_type, rows, to_micros(now))], position)

    # Audit

    def audit_events(
        self, *, aggregate_id: UUID | None = None, after_position: int = 0,
        limit: int = PAGE_SIZE_DEFAULT, point: ReadPoint | None = None,
    ) -> EventsPage:
        """Stored events after ``after_position`` rounded down to a whole
        commit, in log order, up to the log's head when the request arrived;
        pages end where a commit ends (fewer than ``limit``, or more when one
        commit alone holds more). A row that cannot be decoded is listed with
        its ``decode_error``."""
        limit = _check_limit(limit)
        if point is None:
            point = self.plan(Consistency.STRONG, None, after_position, at_name="after_position")
        head, after = point.head or 0, point.cut or 0
        if aggregate_id is None:
            def read(position: int, count: int) -> list[LogEvent]:
                return self.log.read(position, count, upto=head)
        else:
            def read(position: int, count: int) -> list[LogEvent]:
                events = self.log.read_aggregate(aggregate_id, position, count)
                return [event for event in events if event.position <= head]
        events, more = self.commits.whole(read, after, limit)
        return EventsPage([self._raw(event) for event in events], after, head,
                          events[-1].position if more else None)

    def _raw(self, event: LogEvent) -> RawEvent:
        aggregate_id = UUID(hex=event.originator_id)
        try:
            state = self.decoder.full(event.state)
            timestamp = state["timestamp"]
            if not isinstance(timestamp, datetime):
                raise TypeError("timestamp is not a time")
        except Exception as error:  # a damaged row is reported, not a failed listing
            return RawEvent(event.position, aggregate_id, event.version, event.topic, {}, None,
                            decode_error=f"{type(error).__name__}: cannot decode this row")
        requested_by, request_id = provenance.of(state)
        return RawEvent(event.position, aggregate_id, event.version, event.topic,
                        {key: _json_ready(value) for key, value in state.items()}, timestamp,
                        requested_by=requested_by, request_id=request_id,
                        decoded=decoded_fields(state))

    def audit_replay(
        self, *, until_position: int | None = None, until: datetime | None = None,
        progress_line: Callable[[int], None] | None = None, point: ReadPoint | None = None,
    ) -> ReplayReport:
        """Replay the log into fresh state and compare it with every read
        model and the Redis cache (see ``projections.audit_replay``), up to
        ``until_position`` rounded down to a whole commit (``point.cut``), or
        to ``until``, or to the read models' position. Without a ``point`` it
        first waits (bounded) for the read models to reach the log's head."""
        if until is not None:  # a time names the last whole commit at or before it
            if until_position is not None:
                raise InvalidRequest(UNTIL_EITHER)
            until_position, until = self.position_at(until), None
        if point is None:
            point = self.plan(Consistency.STRONG, None, until_position, at_name="until_position")
            self.wait_for(point.target, timeout_s=max(self.wait_s_max, AUDIT_WAIT_S_MIN))
        from projections.audit_replay import AuditReplay

        report = AuditReplay(
            self.log, self.decoder, self.store, cache=self.cache,
            page_events=self.replay_page_events, progress_line=progress_line,
        ).run(until_position=point.cut, until=until)
        return replace(report, position=report.last_position if point.cut is None else point.cut)


def _service_price(service_type: str, rows: list[Any], moment: int) -> ServicePriceView:
    """A service type's rules and the cost in force at ``moment``."""
    rules = [r for r in rows if r[0] == service_type]
    active = [is_active and r[8] is None for r, is_active in zip(rules, active_rules([
        {"service_type": service_type, "valid_from": _time(r[2]), "valid_to": _time(r[3]),
         "set_at": from_micros(int(r[4]))}
        for r in rules
    ], from_micros(moment)), strict=True)]
    cost = PRICES_DEFAULT[service_type]
    for rule, is_active in zip(reversed(rules), reversed(active), strict=True):
        # Only an active rule decides: a replaced one is gone from the schedule
        # even once the rule that replaced it is deactivated.
        if is_active and (rule[2] is None or rule[2] <= moment):
            cost = int(rule[1])
            break
    return ServicePriceView(service_type, cost, PRICES_DEFAULT[service_type], [
        PriceRuleView(int(r[1]), _time(r[2]), _time(r[3]), from_micros(int(r[4])), r[5], r[6],
                      int(r[7]), is_active, _time(r[8]), r[9], r[10])
        for r, is_active in zip(rules, active, strict=True)
    ])


def _metadata(text: str | None) -> dict[str, str] | None:
    """A movement's metadata as stored (JSON text) and answered (a map)."""
    return None if text is None else json.loads(text)


def _json_ready(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
