"""The ``deals-ledger`` command line: one module per subcommand.

``main`` builds the parser and runs a subcommand; ``replay``, ``project``,
``settle``, ``reconcile``, ``verify_proof``, ``show_settings`` and ``bench``
each own one; ``exit_codes`` gives each exit status one meaning;
``progress_bars`` draws progress bars on a terminal. Subcommands build what they
need through ``interface.wiring``, as the HTTP server does, and report
in the HTTP API's shapes (a reconciliation is the same JSON either way).
"""
