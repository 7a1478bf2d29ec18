"""Settlement and reconciliation: mirroring the ledger on Solana, and
checking the chain against the log.

- ``chain_port``: the port every chain adapter implements (``interface.chain``).
- ``fold`` and ``store``: what settlement knows, folded from the event log
  into tables of its own (movements waiting, submissions in flight, settled
  balances, reconciliation runs and findings).
- ``process``: the process manager, one write-ahead submission at a time.
- ``reconciler``: compares chain and log, records findings, corrects nothing.
- ``worker``: runs the process (and periodic reconciliations) in a
  background thread of a ledger process, holding the ``lease`` so one
  settler is active per ledger.
- ``metrics``: the wing's Prometheus series.

Every step is recorded in the log through the command writer
(``application.handlers.settlement_steps``), so a crash anywhere resumes
from the log without moving anything twice.
"""
