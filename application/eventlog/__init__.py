"""The application's published event log: the one way anything reads it.

Every consumer of the stored log reads and follows it through this package:
the read-side projector and audit replay, the settlement fold, and the
command writer's position questions. Before it, three readers and two folds
each carried their own SQL on the events table, their own tracking and their
own page loop; now a fix to any of them (a query plan, a reconnect, the
exactly-once compare-and-set) is made once.

- ``reader``: ``LogEvent``, ``Change`` and the ``EventLog`` protocol (head,
  pages after a position, one aggregate's events, where a version sits,
  which aggregates changed);
  ``sqlite_log`` and ``postgres_log`` hold each database's statements, and
  ``opening.event_log_for(recorder)`` picks one.
- ``decoder``: a stored event's fields (cheap, for folds of millions), its
  full state, or the library's domain event (for a fold that wants objects).
- ``fold_table``: the function a fold applies to each event class, found
  from a stored topic through the library's topic aliases.
- ``field_types``: each decoded field checked against its annotation.
- ``sql_text``: table names and placeholders of a consumer's own store.
- ``tracking``: a consumer's position moved by compare-and-set inside the
  consumer's own transaction (``TrackingConflict`` when another moved it).
- ``commits``: where a commit ends (the one rule), so a position a caller
  names is rounded down to a whole commit and a page never stops inside one.
- ``page_loop``: read the next page after the tracked position, hand it to
  the consumer to apply and advance in one transaction.
- ``locks``: every advisory-lock key (stored contracts) and the
  one-active-holder locks every consumer runs under.
- ``seals`` and ``seal_check``: commit seals, and the check every consumer
  runs on each page so that nothing unsealed is projected, settled or audited.
- ``merkle_log``: the log as an RFC 6962 tree (canonical leaf bytes).
- ``damaged_rows``: where an aggregate's stored rows stop decoding.
- ``price_rules``: which price rule a log position names.

Layer rule (the smallest change to DESIGN's "projections import domain"):
projections import ``application.eventlog``, the application's published
log, and nothing else of application; so this package imports nothing of
application, projections or interface (``tests/test_architecture.py``).
"""
