"""Two id spaces: the ids clients choose and the ids the ledger derives.

All aggregates share one id space, and the ledger derives some ids itself
from public inputs: a wallet's from its address, a compensating reversal's
from the failed transfer, an adjustment's from its finding, a finding's from
its run. Were a derived id an ordinary UUID, a client could compute it and
take it first (open an account under a wallet's id), and the address could
never connect. So every id the ledger derives from now on is stamped UUID
version 8 (RFC 9562's version for ids built by their own rule), and no
client may choose a version 8 id, nor one of the well-known ids of genesis.

The derivation is uuid5's (SHA-1 of a namespace and a name) with the
version nibble set to 8: deterministic, so every process and every replay
agrees on it without asking the store. Ids derived before this rule existed
were plain uuid5 (version 5); the code that finds them looks there too
(``legacy_ledger_id``), and never lets a client-made aggregate stand in for
them.
"""

from __future__ import annotations

from uuid import RFC_4122, UUID, uuid5

from domain.errors import InvalidRequest

LEDGER_ID_VERSION = 8
_VERSION_MASK = 0xF << 76


def ledger_id(namespace: UUID, name: str) -> UUID:
    """The id the ledger derives for ``name`` under ``namespace``."""
    digest = uuid5(namespace, name).int
    return UUID(int=(digest & ~_VERSION_MASK) | (LEDGER_ID_VERSION << 76))


def legacy_ledger_id(namespace: UUID, name: str) -> UUID:
    """The same derivation as stored before version 8 was reserved."""
    return uuid5(namespace, name)


def is_ledger_id(value: UUID) -> bool:
    return value.variant == RFC_4122 and value.version == LEDGER_ID_VERSION


def check_client_id(value: UUID, field: str, reserved: frozenset[UUID] = frozenset()) -> UUID:
    """Refuse an id a client may not choose: one of the ledger's own."""
    if is_ledger_id(value):
        raise InvalidRequest(
            f"{field} {value} is a version 8 UUID; the ledger reserves version 8 for the "
            "ids it derives itself (wallets, compensations, adjustments): choose another "
            "version (4 or 7)"
        )
    if value in reserved:
        raise InvalidRequest(f"{field} {value} is one of the ledger's own well-known ids")
    return value
