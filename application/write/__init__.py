"""The group-commit write core: how commands become stored events.

``writer.CommandWriter`` takes the commands every caller sends and hands batches
to ``processor.CommandProcessor``, which decides them in order against the
aggregates of one ``session.AggregateSession`` (served from the bounded
``aggregate_cache``) and commits the whole batch's events in one transaction
through ``event_store.LedgerApplication`` (the eventsourcing application;
on PostgreSQL with ``postgres_recorder``'s recorders and writer turn).
The writer's position questions about the stored log are answered by the
log's one reader (``application.eventlog``, as ``LedgerApplication.event_log``).

Around that path: ``attempts`` (a batch's attempts: refusals midway, lost
commits, each command's retry budget), ``guarded_cache`` (one attempt's view
of the cache, which a command failing midway cannot leave changed),
``chunks`` (a large non-atomic batch committed a slice at a time),
``contention`` (a lock wait that timed out is contention, not an outage),
``damaged`` (a row that does not decode, refused naming its position),
``sealing`` (each commit's seal, in the commit's own transaction) and
``writer_metrics``.

What a command means lives in ``application.handlers``; this wing only
decides when and how its events are stored, exactly once.
"""
