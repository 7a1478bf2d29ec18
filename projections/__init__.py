"""The read side: read models built from the event log, and the audit.

``projector`` follows the log and applies ``ledger_fold`` (one fold, shared
with the audit ``replay``) to rows (``rows``) kept in ``read_model_store``,
exactly once; ``balance_cache`` writes balances through to Redis;
``hashchain`` is the tamper evidence over the stored events;
``read_models`` answers the API's queries (``queries`` says what they are);
``ledger_metrics`` holds the Prometheus series; ``runtime.ReadSide`` wires
all of it for one process. The log is read, tracked and followed through
``application.eventlog``. Imports point to ``domain`` and, of application,
to ``application.eventlog`` only: the application's published log.
"""
