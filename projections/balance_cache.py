"""The Redis balance cache: ``balance:{account_id}``, written through by the
balances projection, read before the SQL read model.

Each entry is a hash: ``p`` the log position of the account's last change,
``b`` balance, ``h`` held, ``x`` the earliest expiry (epoch microseconds) of
its pending holds ("" if none), ``l`` the incarnation of the ledger it
belongs to, with a 300 s TTL. Entries are written by a Lua compare-and-set
on ``p``, so an older position never overwrites a newer one of the same
incarnation, whatever order writers (the projector, a reader filling a
miss, a resync) reach Redis in. Every entry is read from the read model in
one query, so its fields agree with each other and with its position.

The cache outlives the ledger it describes (a PostgreSQL schema re-created
or restored from a backup while Redis is kept), so it is bound to one
incarnation of one ledger. ``{prefix}ledger`` holds ``id``,
``<genesis>:<token>``, where ``genesis`` is derived from the log's first
event (a re-created ledger has another) and ``token`` is drawn by the
projector whenever Redis knows positions its read models do not (a
restore), and ``w``, the position up to which every change of that
incarnation has been written through. An entry counts only when its ``l``
is the current id and that id names this ledger's genesis; entries of
another ledger or incarnation, and those of the earlier format (no ``l``),
are misses, and the compare-and-set overwrites them whatever their
position. A read that must include position N uses an entry only when the
entry's ``p`` or ``w`` is at least N, and (consistent reads) never one whose
``p`` is past the log's head.

Redis is an accelerator, never a source of truth:

- the write side never reads it: it cannot authorise a debit;
- a read that names ``min_position`` skips it (the SQL read model is what
  the position wait is about);
- an entry whose ``x`` has passed is not used (a hold may have expired
  since), so no answer counts an expired hold as held;
- Redis down, slow (short socket timeouts) or flushed: reads answer from
  SQL; each failure is logged (rate-limited) and counted, and for a
  cool-down the cache is bypassed instead of being waited on;
- a write-through that failed leaves entries that may be stale: the
  position to resynchronise from is recorded in the read-model store
  (so it survives a restart) and every account changed since is written
  again once Redis answers. Until then, stale entries can only be those
  written before the failure, which the resync replaces;
- a projector killed between a page's SQL commit and its write-through
  leaves that page's accounts stale in Redis. So the position up to which
  Redis is known written is recorded too (at most once a second), and a
  projector starting up resynchronises every account changed after it
  before reads use Redis again.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from projections import ledger_metrics as metrics

logger = logging.getLogger(__name__)

TTL_S = 300
SOCKET_TIMEOUT_S = 0.1
COOLDOWN_S = 1.0
RESYNC_BATCH = 1000
RESYNC_META = "cache_resync_from"
CONFIRMED_META = "cache_written_upto"
CONFIRM_EVERY_S = 1.0
_LOG_EVERY_S = 10.0

_CAS = """
local current = redis.call('HMGET', KEYS[1], 'p', 'l')
if current[1] and current[2] == ARGV[6] and tonumber(current[1]) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'b', ARGV[2], 'h', ARGV[3], 'x', ARGV[4], 'l', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  return 0
end
local written = tonumber(redis.call('HGET', KEYS[1], 'w') or '0')
if tonumber(ARGV[2]) > written then
  redis.call('HSET', KEYS[1], 'w', ARGV[2])
end
return 1
"""


@dataclass(frozen=True)
class CachedBalance:
    account_id: str  # hex
    balance: int
    held: int
    position: int
    next_expiry: int | None  # epoch microseconds

    def usable_at(self, now_micros: int) -> bool:
        return self.next_expiry is None or now_micros < self.next_expiry


@dataclass(frozen=True)
class CacheRead:
    """One look at the cache: the entry if it is this incarnation's (else
    None), the incarnation (to fill a miss with), and ``written_upto``,
    the position up to which every change is known written through."""

    entry: CachedBalance | None
    incarnation: str
    written_upto: int

    def covers(self, position: int) -> int | None:
        """The position the entry's state is known exact at, if it is at
        least ``position``; else None (read SQL)."""
        if self.entry is None:
            return None
        known = max(self.entry.position, self.written_upto)
        return known if known >= position else None


def meta_key(prefix: str = "") -> str:
    """The hash that binds the cache to one ledger's incarnation."""
    return f"{prefix}ledger"


def cache_key(account_id: str, prefix: str = "") -> str:
    """``prefix`` (DEALS_REDIS_PREFIX) keeps ledgers that share a Redis apart:
    the system accounts have the same ids in every ledger."""
    return f"{prefix}balance:{UUID(hex=account_id)}"


class BalanceCache:
    def __init__(
        self, url: str | None = None, *, client: Any = None, ttl_s: int = TTL_S,
        socket_timeout_s: float = SOCKET_TIMEOUT_S, cooldown_s: float = COOLDOWN_S,
        prefix: str = "", genesis: Callable[[], str | None] = lambda: None,
    ) -> None:
        if client is None:
            if url is None:
                raise ValueError("a Redis URL or a client is needed")
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
            )
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.cooldown_s = cooldown_s
        self._script = client.register_script(_CAS)
        self._advance = client.register_script(_ADVANCE)
        self.genesis = genesis
        """This ledger's genesis id (None until the log has its first event)."""
        self.incarnation: str | None = None
        """The incarnation this process writes as (bound by the projector)."""
        self._down_until = 0.0
        self._last_log = 0.0
        self._resync_from: int | None = None
        self._resync_loaded = False
        self._confirmed_at = 0.0
        self._lock = threading.Lock()

    def key(self, account_id: str) -> str:
        return cache_key(account_id, self.prefix)

    # Reads

    def get(self, account_id: str) -> CacheRead | None:
        """The entry with its incarnation's written-through position (one
        round trip). None (read SQL, do not fill) while Redis cools down,
        while a failed write-through is not yet resynchronised (an entry may
        be older than the read model), and while Redis is bound to another
        ledger or none."""
        genesis = self.genesis()
        if self._cooling_down() or self._resync_from is not None or genesis is None:
            metrics.CACHE_BYPASSED.inc()
            return None
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.key(account_id), "p", "b", "h", "x", "l")
            pipe.hmget(meta_key(self.prefix), "id", "w")
            (p, b, h, x, bound), (incarnation, written) = pipe.execute()
        except Exception as error:
            self._failed("read", error)
            return None
        incarnation = _text(incarnation)
        if incarnation is None or not incarnation.startswith(genesis + ":"):
            metrics.CACHE_BYPASSED.inc()
            return None
        if p is None or b is None or h is None or _text(bound) != incarnation:
            metrics.CACHE_MISSES.inc()
            return CacheRead(None, incarnation, int(written or 0))
        metrics.CACHE_HITS.inc()
        entry = CachedBalance(account_id, int(b), int(h), int(p), int(x) if x else None)
        return CacheRead(entry, incarnation, int(written or 0))

    def current_incarnation(self) -> str | None:
        """The incarnation Redis is bound to now (for the audit)."""
        return _text(self.client.hget(meta_key(self.prefix), "id"))

    # Writes

    def put(self, entries: Iterable[CachedBalance], incarnation: str | None = None) -> bool:
        """Compare-and-set each entry as ``incarnation`` (default: the one
        this process is bound to); False if Redis could not be reached or
        no incarnation is bound."""
        entries = list(entries)
        incarnation = incarnation or self.incarnation
        if not entries:
            return True
        if self._cooling_down() or incarnation is None:
            return False
        try:
            pipe = self.client.pipeline(transaction=False)
            for entry in entries:
                self._script(
                    keys=[self.key(entry.account_id)],
                    args=[entry.position, entry.balance, entry.held,
                          "" if entry.next_expiry is None else entry.next_expiry, self.ttl_s,
                          incarnation],
                    client=pipe,
                )
            pipe.execute()
        except Exception as error:
            self._failed("write", error)
            return False
        return True

    def fill(self, entry: CachedBalance, incarnation: str) -> None:
        """After a miss answered from SQL (heals a flushed cache), as the
        incarnation the miss saw; safe at any time, as the compare-and-set
        keeps a newer entry."""
        self.put([entry], incarnation)

    def bind(self, store: Any) -> bool:
        """The projector's first step with Redis: keep the incarnation Redis
        holds if it is this ledger's and knows no position the read models
        do not; else draw a new one (a re-created or restored ledger) and
        write every account again. False while Redis or the log cannot say."""
        genesis = self.genesis()
        if genesis is None or self._cooling_down():
            return False
        try:
            incarnation, written = self.client.hmget(meta_key(self.prefix), "id", "w")
            incarnation = _text(incarnation)
            position = store.position()
            if (incarnation is not None and incarnation.startswith(genesis + ":")
                    and int(written or 0) <= position):
                self.incarnation = incarnation
                return True
            fresh = f"{genesis}:{secrets.token_hex(8)}"
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(meta_key(self.prefix))
            pipe.hset(meta_key(self.prefix), mapping={"id": fresh, "w": 0})
            pipe.execute()
        except Exception as error:
            self._failed("write", error)
            return False
        logger.warning("balance cache bound to a new incarnation of this ledger (Redis held %s)",
                       "nothing" if incarnation is None else "another ledger or a later position")
        self.incarnation = fresh
        self._need_resync(store, 0)
        return True

    def _written_upto(self, upto: int) -> bool:
        """Record that every change up to ``upto`` is in Redis. False when
        Redis fails, or holds another incarnation (flushed, or re-bound by
        another projector): this one binds again before its next write."""
        try:
            bound = self._advance(keys=[meta_key(self.prefix)], args=[self.incarnation, upto])
        except Exception as error:
            self._failed("write", error)
            return False
        if not bound:
            self.incarnation = None
        return bool(bound)

    def write_through(
        self, store: Any, entries: list[CachedBalance], since: int, upto: int
    ) -> None:
        """After a page committed: write the changed accounts as the store
        now has them (``entries``, read in the page's own transaction). The
        page was applied after ``since``, up to ``upto``."""
        if self._resync_from is not None or self.incarnation is None:
            self.heal(store)
        if (self._resync_from is None and self.put(entries)
                and self._written_upto(upto)):
            self._confirm(store, upto)
            return
        self._need_resync(store, since)

    def _confirm(self, store: Any, upto: int) -> None:
        """Record that Redis holds every change up to ``upto`` (throttled:
        a restart resynchronises at most a second's worth of accounts)."""
        now = time.monotonic()
        if now - self._confirmed_at < CONFIRM_EVERY_S:
            return
        self._confirmed_at = now
        try:
            store.set_meta(CONFIRMED_META, upto)
        except Exception:
            logger.exception("could not record the cache's written position")

    def resync_from(self, store: Any, position: int) -> bool:
        """Write every account changed after ``position``; True when done."""
        last = ""
        while True:
            entries = store.cache_entries_changed_after(position, last, RESYNC_BATCH)
            if not entries:
                return True
            if not self.put(entries):
                return False
            last = entries[-1].account_id

    def heal(self, store: Any) -> None:
        """If earlier writes failed, resynchronise now (when Redis answers)."""
        with self._lock:
            if not self._resync_loaded:
                self._resync_from = self._resync_start(store)
                self._resync_loaded = True
        if self.incarnation is None and not self.bind(store):
            return
        with self._lock:
            if self._resync_from is None or self._cooling_down():
                return
            upto = store.position()
            if self.resync_from(store, self._resync_from) and self._written_upto(upto):
                logger.warning("balance cache resynchronised from position %s", self._resync_from)
                store.set_meta(CONFIRMED_META, upto)
                store.set_meta(RESYNC_META, None)
                self._resync_from = None

    @staticmethod
    def _resync_start(store: Any) -> int | None:
        """Where a starting projector resynchronises from: the earlier of a
        recorded failed write-through and the last position Redis is known
        to hold (0 when never recorded); None when Redis holds all."""
        failed = store.meta(RESYNC_META)
        written = store.meta(CONFIRMED_META) or 0
        start = written if failed is None else min(failed, written)
        return None if start >= store.position() else start

    def _need_resync(self, store: Any, since: int) -> None:
        with self._lock:
            if self._resync_from is None or since < self._resync_from:
                self._resync_from = since
                try:
                    store.set_meta(RESYNC_META, since)
                except Exception:
                    logger.exception("could not record the cache resync position")

    @property
    def needs_resync(self) -> bool:
        return self._resync_from is not None or self.incarnation is None

    # Failure handling

    def _cooling_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, operation: str, error: Exception) -> None:
        metrics.CACHE_ERRORS.labels(operation).inc()
        self._down_until = time.monotonic() + self.cooldown_s
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_S:
            self._last_log = now
            logger.warning(
                "redis balance cache unavailable (%s: %s); answering from SQL",
                type(error).__name__, error,
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection
            self.client.close()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
