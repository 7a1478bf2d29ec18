"""Well-known ids: the system accounts, the price schedule and genesis.

They are derived, not generated, so every process (and every replay)
agrees on them without asking the store.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from domain.account import ISSUANCE, REWARDS, TREASURY
from domain.amounts import INITIAL_SUPPLY

_NAMESPACE = UUID("0b8f7f8e-2d55-5a4e-9a43-6a1f5b0c9e21")

TREASURY_ID = uuid5(_NAMESPACE, "account:treasury")
REWARDS_ID = uuid5(_NAMESPACE, "account:rewards")
ISSUANCE_ID = uuid5(_NAMESPACE, "account:issuance")
SYSTEM_ACCOUNTS = {TREASURY: TREASURY_ID, REWARDS: REWARDS_ID, ISSUANCE: ISSUANCE_ID}
PRICE_SCHEDULE_ID = uuid5(_NAMESPACE, "price-schedule")

GENESIS_MINT_ID = uuid5(_NAMESPACE, "genesis:mint")
GENESIS_REWARDS_FUNDING_ID = uuid5(_NAMESPACE, "genesis:rewards-funding")
REWARDS_FUNDING = INITIAL_SUPPLY // 10
"""At genesis the treasury funds the rewards pool with 10% of the supply
(100,000,000 DEAL); more can be moved there later by an ordinary transfer."""


def derived_id(purpose: str, source: UUID) -> UUID:
    """An id derived from another, for movements the ledger itself creates
    (e.g. the compensating reversal of a failed settlement)."""
    return uuid5(_NAMESPACE, f"{purpose}:{source}")
