"""Locks the log's consumers run under: one active holder, and turns.

Every consumer of the log (the projector per read-model store, the settler
per ledger) keeps one active holder; the others stand by. On SQLite that is
an exclusive ``flock`` on a file (``FileLock``), on PostgreSQL a session
advisory lock on a connection of its own (``AdvisoryLock``). The OS or the
server drops either when its holder dies, so a standby takes over without
waiting for a timeout. Processes that create tables together take turns
under a blocking advisory lock (``taking_turns``).

The lock is never what makes a consumer exactly-once (that is the tracking
compare-and-set); it keeps a second one from doing the same work.

Key values are stored contracts: ``advisory_lock_key`` hashes a name, and a
changed name or hash would let an old and a new holder run at once during an
upgrade (``tests/eventlog/test_lock_keys.py`` pins them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
_CONNINFO_KEYS = ("dbname", "host", "port", "user", "password")


def advisory_lock_key(name: str) -> int:
    """A stable 64-bit advisory-lock key for a name (schema-qualified by the caller)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


HASHTEXT_DDL_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(?))"
"""The two lock keys not made by ``advisory_lock_key``: the DDL locks of the
settlement store and of the webhook store, keyed by PostgreSQL's own
``hashtext`` of ``settlement_ddl_lock_name(schema)`` and
``webhooks_ddl_lock_name(schema)`` since each store's first version. Their
values are contracts like every other key (``tests/eventlog/test_lock_keys.py``
pins them), so they keep their scheme."""


def settlement_ddl_lock_name(schema: str) -> str:
    return f"deals-ledger:settlement-ddl:{schema}"


def webhooks_ddl_lock_name(schema: str) -> str:
    return f"deals-ledger:webhooks-ddl:{schema}"


def conninfo_of(datastore: Any) -> dict[str, Any]:
    """Connection parameters of a library PostgreSQL datastore, for a lock's
    connection of its own (a pooled one would carry the lock back to the pool)."""
    kwargs = dict(datastore.pool.kwargs)
    return {key: kwargs[key] for key in _CONNINFO_KEYS}


@contextmanager
def taking_turns(conninfo: Mapping[str, Any], key: int) -> Iterator[None]:
    """Wait for the advisory lock ``key`` and hold it for the block, on a
    connection of its own (so a crash inside the block releases it)."""
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield


_ADVISORY_LOCK_GRANTED = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1)"
)


def _lock_table_key(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: its high and low 32 bits,
    unsigned, as classid and objid (objsubid 1)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class OneHolderLock(Protocol):
    """Keeps one holder active (one projector per read-model store, one
    settler per ledger); the others wait."""

    def try_acquire(self) -> bool:
        """Take the lock if free (or already ours); never blocks."""
        ...

    @property
    def held(self) -> bool: ...

    def is_held_anywhere(self) -> bool:
        """Some live holder, in this process or another, has the lock now.
        Never takes it (a standby's attempt at that instant may fail and is
        tried again). For metrics computed when scraped."""
        ...

    def release(self) -> None: ...


class FileLock:
    """An exclusive ``flock`` on a file: one process (and one holder in it)
    at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for an operator
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def is_held_anywhere(self) -> bool:
        """A shared lock on a descriptor of its own is refused while any
        open file (this process's holder's included) holds the exclusive
        one; the OS drops that with its holder, so a killed holder is seen
        at once."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the shared lock, if taken
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock:
    """A PostgreSQL session advisory lock, held on a connection of its own:
    if the holder dies, the server drops the lock with the connection, and
    ``held`` checks that connection is alive since the lock goes with it."""

    def __init__(self, conninfo: Mapping[str, Any], key: int, purpose: str = "projection") -> None:
        self._conninfo = dict(conninfo)
        self.key = key
        self._purpose = purpose
        self._conn: Any = None

    def try_acquire(self) -> bool:
        import psycopg

        if self.held:
            return True
        self.release()
        try:
            conn = psycopg.connect(**self._conninfo, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            logger.warning("%s lock: cannot connect: %s", self._purpose, type(error).__name__)
            return False
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error:
            row = None
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    @property
    def held(self) -> bool:
        if self._conn is None or self._conn.closed or self._conn.broken:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    def is_held_anywhere(self) -> bool:
        """Asks the server's lock table, on a short connection of its own:
        the server drops the lock with its holder's session, so a killed
        holder is seen as soon as the server sees the connection close.
        Raises psycopg.Error when the server cannot be asked."""
        import psycopg

        with psycopg.connect(**self._conninfo, autocommit=True,
                             connect_timeout=CONNECT_TIMEOUT_S) as conn:
            row = conn.execute(_ADVISORY_LOCK_GRANTED, _lock_table_key(self.key)).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        """Unlock on the session, then close it: the lock is free when this
        returns. Closed alone, the session kept it until its server process
        had ended, a few ms later (still held at 248 of 300 looks right
        after, up to 55 ms under load), and a next holder trying then (a
        projector taking over, a read side opened after another closed)
        stood by, projecting nothing, while its readers waited for it."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a dead session's lock is dropped with it
                if not (self._conn.closed or self._conn.broken):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            with contextlib.suppress(Exception):  # closing a dead connection
                self._conn.close()
            self._conn = None
