"""Reading the next page of the log while the current one is folded.

A bulk fold (the audit replay) alternates between waiting on the database
for a page (and checking its seals) and folding it in Python. The wait
releases the GIL (psycopg waits on its socket without it, the database
works on another core, and a seal's one-shot HMAC over a commit's bytes
runs without it too), so a second thread that reads page N+1 while page N
is folded hides most of the read behind the fold. At most one page is
read ahead: memory stays one page more than the fold holds.

The pages come in order, each starting after the last one's final event,
exactly as a loop of ``read_page`` calls would give them; an error of the
reader (``UnauthenticatedEvent`` when a seal does not check out, a database
error) is raised to the consumer when it asks for the page that failed,
never earlier, so everything before it is folded first.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor

from application.eventlog.reader import LogEvent

ReadPage = Callable[[int, int], list[LogEvent]]


def pages_read_ahead(
    read_page: ReadPage, after: int, limit: int
) -> Generator[list[LogEvent], None, None]:
    """The pages after ``after`` (``read_page(after, limit)`` each), until
    an empty one; the next is read on a thread of its own while the
    consumer holds the current. Closing the iterator early waits for the
    one read in flight and drops it."""
    with ThreadPoolExecutor(1, thread_name_prefix="log-read-ahead") as pool:
        pending: Future[list[LogEvent]] = pool.submit(read_page, after, limit)
        while True:
            events = pending.result()
            if not events:
                return
            pending = pool.submit(read_page, events[-1].position, limit)
            yield events
