"""Settlement and reconciliation: mirroring the ledger on Solana, and
checking the chain against the log.

- ``chain_port``: the port every chain adapter implements (``interface.chain``).
- ``fold`` and ``store``: what settlement knows, folded from the event log
  into tables of its own (movements waiting, submissions in flight, settled
  balances, reconciliation runs and findings).
- ``process``: the process manager, one write-ahead submission at a time.
- ``reconciler`` and ``balance_reading``: compares chain and log (a chain
  balance judged against what a working settler may have landed), records
  findings, corrects nothing.
- ``anchoring``: the log's Merkle root on chain, write-ahead, with
  ``anchor_witness`` (the anchored leaves kept outside the database);
  ``anchor_audit`` checks the log against every anchor on chain.
- ``worker``: runs the process (and periodic reconciliations) in a
  background thread of a ledger process, holding the ``lease`` so one
  settler is active per ledger.
- ``metrics``: the wing's Prometheus series.

Every step is recorded in the log through the command writer
(``application.handlers.settlement_steps``), so a crash anywhere resumes
from the log without moving anything twice.
"""
