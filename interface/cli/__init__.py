"""The ``deals-ledger`` command line: one module per subcommand.

``main`` builds the parser and runs a subcommand; ``replay``, ``project``,
``settle``, ``reconcile`` and ``bench`` each own one; ``progress_line`` and
``reconciliation_json`` are how they report. Subcommands build what they
need through ``interface.wiring``, as the HTTP server does.
"""
