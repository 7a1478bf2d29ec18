"""``ReadModelQueries``: the ``LedgerQueries`` the HTTP API and the CLI use.

Every answer comes from the read models (and the Redis cache for plain
balance reads), never from aggregates; ``audit_events`` reads the stored
log. Queries that name ``min_position`` first wait on the projector's
progress condition (bounded by ``wait_s_max``), re-reading the store's
tracking position between waits so a projector in another process counts
too.

Lists page by keyset on the log position (``position > cursor ORDER BY
position LIMIT n``, on an ``(account, position)`` index), so the thousandth
page of an account with a million rows costs what the first does.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.eventlog.decoder import EventDecoder
from application.eventlog.reader import EventLog
from domain.errors import AccountNotFound, InvalidRequest, TransferNotFound
from domain.pricing import DEFAULT_PRICES, SERVICE_TYPES
from domain.transfer import PENDING, POSTED
from projections.balance_cache import BalanceCache, CachedBalance
from projections.projector import Progress
from projections.queries import (
    DEFAULT_PAGE_SIZE,
    MIN_POSITION_WAIT_S,
    PAGE_SIZE_MAX,
    BalanceView,
    HistoryEntry,
    Page,
    PriceRuleView,
    RawEvent,
    ReadModelBehind,
    ReplayReport,
    ServicePriceView,
    TransactionView,
    WalletView,
)
from projections.read_model_store import ReadModelStore
from projections.rows import TransactionRow, columns
from projections.times import from_micros, to_micros

_POLL_S = 0.05
_CURSOR_PREFIX = "p1:"
_TX_COLUMNS = ", ".join(columns(TransactionRow))
_TX_ONE_SIDE = (
    f"SELECT {_TX_COLUMNS} FROM {{transactions}} "  # noqa: S608 - fixed column names
    "WHERE {side} = ? AND position > ? ORDER BY position LIMIT ?"
)
_TX_BOTH_SIDES = (
    f"SELECT * FROM ({_TX_ONE_SIDE.replace('{side}', 'source')}) s UNION ALL "  # noqa: S608
    f"SELECT * FROM ({_TX_ONE_SIDE.replace('{side}', 'destination')}) d "
    "ORDER BY position LIMIT ?"
)
_BALANCE_NOW = (
    "SELECT b.balance, b.held, b.position, "
    "(SELECT COALESCE(SUM(h.amount), 0) FROM {holds} h WHERE h.account_id = b.account_id "
    "AND h.status = 'pending' AND h.expires_at <= ?), "
    "(SELECT MIN(h.expires_at) FROM {holds} h WHERE h.account_id = b.account_id "
    "AND h.status = 'pending') FROM {balances} b WHERE b.account_id = ?"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        position = int(text[len(_CURSOR_PREFIX):])
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("cursor is not one this service issued") from None
    if position < 0:
        raise InvalidRequest("cursor is not one this service issued")
    return position


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
_BY_TIME = _Axis(1, "created_at", "created_at DESC, position DESC", "placed_at", "closed_at")


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
        self.cache = cache
        self.progress = progress or Progress()
        self.clock = clock
        self.wait_s_max = wait_s_max
        self.replay_page_events = replay_page_events

    # Read-your-writes

    def position(self) -> int:
        """How far the read models have applied the log."""
        position = self.store.position()
        self.progress.advance(position)
        return position

    def lag_events(self) -> int:
        """Events in the log the read models have not applied (for /ready)."""
        return max(0, self.log.head() - self.position())

    def wait_for(self, position: int, timeout_s: float | None = None) -> bool:
        """Wait until the read models have applied ``position``; False if
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

    def _reach(self, min_position: int | None) -> None:
        if min_position is None:
            return
        if type(min_position) is not int or min_position < 0:
            raise InvalidRequest("min_position must be a non-negative integer")
        if not self.wait_for(min_position):
            raise ReadModelBehind(
                f"the read models have not reached position {min_position} within "
                f"{self.wait_s_max:g} s; retry"
            )

    # Balances

    def balance(
        self, account_id: UUID, *, at_position: int | None = None, at_time: datetime | None = None,
        min_position: int | None = None,
    ) -> BalanceView:
        if at_position is not None and at_time is not None:
            raise InvalidRequest("ask for a balance at a position or at a time, not both")
        if at_position is not None:
            if type(at_position) is not int or at_position < 0:
                raise InvalidRequest("at_position must be a non-negative integer")
            self._reach(max(min_position or 0, min(at_position, self.log.head())))
            return self._balance_at_position(account_id, at_position)
        if at_time is not None:
            self._reach(min_position)
            return self._balance_at_time(account_id, to_micros(at_time))
        self._reach(min_position)
        now = to_micros(self.clock())
        if min_position is None and self.cache is not None:
            cached = self.cache.get(account_id.hex)
            if cached is not None and cached.usable_at(now):
                return BalanceView(account_id, cached.balance, cached.held,
                                   cached.balance - cached.held, cached.position)
        return self._balance_now(account_id, now)

    def _balance_now(self, account_id: UUID, now: int) -> BalanceView:
        with self.store.read() as cursor:
            cursor.execute(self.store.sql(_BALANCE_NOW), (now, account_id.hex))
            row = cursor.fetchone()
        if row is None:
            raise AccountNotFound(f"account {account_id} does not exist")
        balance, held, position, expired, next_expiry = (int(row[0]), int(row[1]), int(row[2]),
                                                          int(row[3]), row[4])
        if self.cache is not None:
            self.cache.fill(CachedBalance(account_id.hex, balance, held, position, next_expiry))
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

    def _balance_at_position(self, account_id: UUID, position: int) -> BalanceView:
        return self._balance_at(account_id, _BY_POSITION, position, self._time_of(position),
                                f"at position {position}")

    def _balance_at_time(self, account_id: UUID, moment: int) -> BalanceView:
        return self._balance_at(account_id, _BY_TIME, moment, moment, "at that time")

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

    def _time_of(self, position: int) -> int:
        """The time of the last event at or before ``position`` (positions
        may have gaps on PostgreSQL)."""
        events = self.log.read(max(0, position - 1000), 1000, upto=position)
        if not events:
            return to_micros(self.clock())
        stamp = self.decoder.fields(events[-1].state)["timestamp"]
        return to_micros(datetime.fromisoformat(stamp))

    # Lists

    def history(
        self, account_id: UUID, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None,
    ) -> Page[HistoryEntry]:
        limit, after = _check_limit(limit), decode_cursor(cursor)
        self._reach(min_position)
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(
                "SELECT transfer_id, change, balance_before, balance_after, type, reason, "
                "created_at, position FROM {balance_history} WHERE account_id = ? AND position > ? "
                "ORDER BY position LIMIT ?"
            ), (account_id.hex, after, limit + 1))
            rows = cur.fetchall()
        items = [
            HistoryEntry(UUID(hex=r[0]), int(r[1]), int(r[2]), int(r[3]), r[4], r[5],
                         from_micros(int(r[6])), int(r[7]))
            for r in rows[:limit]
        ]
        return Page(items, encode_cursor(items[-1].position) if len(rows) > limit else None)

    def transactions(
        self, account_id: UUID, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None,
    ) -> Page[TransactionView]:
        limit, after = _check_limit(limit), decode_cursor(cursor)
        self._reach(min_position)
        # Two keyset range scans, one per index, merged: no OR, no OFFSET.
        query = _TX_BOTH_SIDES
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(query), (
                account_id.hex, after, limit + 1, account_id.hex, after, limit + 1, limit + 1,
            ))
            rows = [TransactionRow(*r) for r in cur.fetchall()]
        now = to_micros(self.clock())
        items = [self._transaction_view(row, now) for row in rows[:limit]]
        return Page(items, encode_cursor(items[-1].position) if len(rows) > limit else None)

    def transfer(self, transfer_id: UUID, *, min_position: int | None = None) -> TransactionView:
        self._reach(min_position)
        with self.store.read() as cur:
            cur.execute(self.store.sql(
                f"SELECT {_TX_COLUMNS} FROM {{transactions}} WHERE transfer_id = ?"  # noqa: S608
            ), (transfer_id.hex,))
            row = cur.fetchone()
        if row is None:
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        return self._transaction_view(TransactionRow(*row), to_micros(self.clock()))

    @staticmethod
    def _transaction_view(row: TransactionRow, now: int) -> TransactionView:
        hold_status = None
        if row.phase != POSTED:
            hold_status = row.phase
            if row.phase == PENDING and row.expires_at is not None and row.expires_at <= now:
                hold_status = "expired"  # due, not yet released by the sweeper
        return TransactionView(
            transfer_id=UUID(hex=row.transfer_id), kind=row.kind, source=UUID(hex=row.source),
            destination=UUID(hex=row.destination), amount=row.amount, reason=row.reason,
            status=row.status, created_at=from_micros(row.created_at),
            updated_at=from_micros(row.updated_at), position=row.position,
            signature=row.signature, slot=row.slot, hold_status=hold_status,
            expires_at=_time(row.expires_at), reversed_by=_uuid(row.reversed_by),
            reverses=_uuid(row.reverses),
        )

    def wallets(self, account_id: UUID, *, min_position: int | None = None) -> list[WalletView]:
        self._reach(min_position)
        with self.store.read() as cur:
            self._opened(cur, account_id)
            cur.execute(self.store.sql(
                "SELECT address, account_id, status, connected_at, disconnected_at "
                "FROM {wallets} WHERE account_id = ? ORDER BY connected_at, address LIMIT ?"
            ), (account_id.hex, PAGE_SIZE_MAX))
            rows = cur.fetchall()
        return [
            WalletView(r[0], UUID(hex=r[1]), r[2], from_micros(int(r[3])), _time(r[4]))
            for r in rows
        ]

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

    def pricing(self, now: datetime) -> list[ServicePriceView]:
        with self.store.read() as cur:
            cur.execute(self.store.sql(
                "SELECT service_type, token_cost, valid_from, valid_to, set_at "
                "FROM {price_rules} ORDER BY position"
            ))
            rows = cur.fetchall()
        moment = to_micros(now)
        views = []
        for service_type in SERVICE_TYPES:
            rules = [r for r in rows if r[0] == service_type]
            cost = DEFAULT_PRICES[service_type]
            for rule in reversed(rules):
                if (rule[2] is None or rule[2] <= moment) and (rule[3] is None or moment < rule[3]):
                    cost = int(rule[1])
                    break
            views.append(ServicePriceView(service_type, cost, DEFAULT_PRICES[service_type], [
                PriceRuleView(int(r[1]), _time(r[2]), _time(r[3]), from_micros(int(r[4])))
                for r in rules
            ]))
        return views

    # Audit

    def audit_events(
        self, *, aggregate_id: UUID | None = None, after_position: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> list[RawEvent]:
        """Stored events in log order; ``state`` is JSON-ready (ids and times
        as strings)."""
        limit = _check_limit(limit)
        if type(after_position) is not int or after_position < 0:
            raise InvalidRequest("after_position must be a non-negative integer")
        if aggregate_id is None:
            events = self.log.read(after_position, limit)
        else:
            events = self.log.read_aggregate(aggregate_id, after_position, limit)
        raw = []
        for event in events:
            state = self.decoder.full(event.state)
            timestamp = state["timestamp"]
            raw.append(RawEvent(
                event.position, UUID(hex=event.originator_id), event.version, event.topic,
                {key: _json_ready(value) for key, value in state.items()}, timestamp,
            ))
        return raw

    def audit_replay(
        self, *, until_position: int | None = None, until: datetime | None = None,
        progress_line: Callable[[int], None] | None = None,
    ) -> ReplayReport:
        """Replay the log into fresh state and compare it with every read
        model and the Redis cache (see ``projections.replay``). Waits first
        (bounded) for the read models to reach the log's head, or
        ``until_position``."""
        from projections.replay import AuditReplay

        target = self.log.head() if until_position is None else until_position
        self.wait_for(min(target, self.log.head()), timeout_s=max(self.wait_s_max, 30.0))
        return AuditReplay(
            self.log, self.decoder, self.store, cache=self.cache,
            page_events=self.replay_page_events, progress_line=progress_line,
        ).run(until_position=until_position, until=until)


def _json_ready(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
