"""The application layer: the ledger's use cases, in wings.

At the root, what every wing speaks: ``commands`` (what callers ask),
``outcomes`` (what they are answered), ``errors`` (refusals of running
rather than of rules), ``alerts`` (conditions for an operator) and
``retry``. ``handlers/`` decides each command against the aggregates.

Wings: ``write/`` (the group-commit write core), ``settlement/``
(settlement and reconciliation on Solana), ``ops/`` (background daemons),
``eventlog/`` (the published log: the one reader, tracking, page loop and
locks every consumer of the stored log uses, the read side included).
Imports point inward only: to ``domain`` and between these modules.
"""
