"""The ``deals-ledger`` command line: one module per subcommand.

``main`` builds the parser and runs a subcommand; ``replay``, ``project``,
``settle``, ``reconcile`` and ``bench`` each own one; ``progress_line``
draws progress. Subcommands build what they
need through ``interface.wiring``, as the HTTP server does, and report
in the HTTP API's shapes (a reconciliation is the same JSON either way).
"""
