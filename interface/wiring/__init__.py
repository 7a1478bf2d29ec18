"""The composition root: how one ledger process is put together.

``settings`` reads the DEALS_* environment (``api_keys`` parses its key
list); ``service.LedgerService`` builds the event store, the command writer, the read side, the settler
(``settler``: chain adapter, custody key, lease) and the background work
(``store_health``, ``alerting`` with its ``alert_webhook``), and starts and
stops them in order. The HTTP app and every CLI subcommand build a ledger
through here, so there is one way to wire it. Around it: ``store_env`` (the
event store's environment), ``ledger_presence`` (refuse a store with no
ledger), ``data_dir`` (a private data dir), ``seal_keys`` and ``key_checks``
(key files checked before a role starts), ``leaf_witness`` (the
anchored-leaves file), ``logs`` (log format, request ids).
"""
