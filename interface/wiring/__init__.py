"""The composition root: how one ledger process is put together.

``settings`` reads the DEALS_* environment; ``service.LedgerService`` builds
the event store, the command writer, the read side, the settler
(``settler``: chain adapter, custody key, lease) and the background work
(``store_health``, ``alerting`` with its ``alert_webhook``), and starts and
stops them in order. The HTTP app and every CLI subcommand build a ledger
through here, so there is one way to wire it.
"""
