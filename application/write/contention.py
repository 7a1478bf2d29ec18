"""A lock wait that timed out is contention, not an outage.

Every commit takes the events table lock (and the writer turn) with the
store's ``lock_timeout``. When another process holds that lock longer (its
group is large), the wait times out with SQLSTATE 55P03 lock_not_available:
the server answered, it is healthy, and nothing of the attempt was written
(the failed statement rolls its transaction back). Treating that as the
store being unreachable would answer 503 and raise a false
``store_unreachable`` alert; instead the command tries again under its own
retry budget and, having lost twice, under the writer turn.

The recorder raises ``StoreContended`` for such a wait so that its own
retry of lost connections (three quick attempts) does not also spend three
lock timeouts of the caller's time before the writer sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.persistence import DatabaseError, OperationalError

LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a lock wait ended by ``lock_timeout``."""


class StoreContended(DatabaseError):
    """A lock wait on a healthy store timed out; nothing was written.
    Not an ``OperationalError``: connection retries must not repeat it."""


def is_lock_timeout(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, is a lock wait
    that timed out (the library wraps psycopg's error in its own)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, StoreContended):
            return True
        if getattr(error, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def lock_timeouts_as_contention() -> Iterator[None]:
    """Re-raise a timed-out lock wait as ``StoreContended``."""
    try:
        yield
    except OperationalError as error:
        if is_lock_timeout(error):
            raise StoreContended(str(error)) from error
        raise
