"""The domain layer: the ledger's pure model, no I/O, no clock, no other layer.

``amounts`` (the one place text becomes money: int base units, 8 decimals),
``errors`` (every rule's refusal, one root, stable codes), the aggregates
``account.Account``, ``transfer.Transfer`` (a movement's phases and its
settlement states, and the one table of the statuses clients see),
``wallet.Wallet``, ``pricing.PriceSchedule``, ``reconciliation``
(``Reconciliation``, ``Finding``) and ``anchor.Anchor``; ``movements``
(double entry), ``system`` (the well-known system accounts), ``ids`` (the
ids the ledger derives), ``provenance`` (who asked, as events record it),
``merkle`` (RFC 6962 trees), ``rfc3339`` (times at the edge).
"""
