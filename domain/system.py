"""Well-known ids: the system accounts, the price schedule and genesis.

They are derived, not generated, so every process (and every replay)
agrees on them without asking the store.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from domain.account import EXTERNAL, ISSUANCE, REWARDS, TREASURY
from domain.amounts import INITIAL_SUPPLY
from domain.ids import ledger_id, legacy_ledger_id

_NAMESPACE = UUID("0b8f7f8e-2d55-5a4e-9a43-6a1f5b0c9e21")

TREASURY_ID = uuid5(_NAMESPACE, "account:treasury")
REWARDS_ID = uuid5(_NAMESPACE, "account:rewards")
ISSUANCE_ID = uuid5(_NAMESPACE, "account:issuance")
EXTERNAL_ID = uuid5(_NAMESPACE, "account:external")
"""Tokens outside custody (withdrawn to, or deposited from, users' wallets).
Genesis opens it at every start, so a ledger written before it existed gets
it at its next start."""
SYSTEM_ACCOUNTS = {
    TREASURY: TREASURY_ID, REWARDS: REWARDS_ID, ISSUANCE: ISSUANCE_ID, EXTERNAL: EXTERNAL_ID,
}
CUSTODY_LESS_ACCOUNTS = frozenset({ISSUANCE_ID, EXTERNAL_ID})
"""The system accounts with no custody token account: the issuance account
is the mint's side (its negative balance is the supply), the external
account the tokens outside custody."""
PRICE_SCHEDULE_ID = uuid5(_NAMESPACE, "price-schedule")

GENESIS_MINT_ID = uuid5(_NAMESPACE, "genesis:mint")
GENESIS_REWARDS_FUNDING_ID = uuid5(_NAMESPACE, "genesis:rewards-funding")
REWARDS_FUNDING = INITIAL_SUPPLY // 10
"""At genesis the treasury funds the rewards pool with 10% of the supply
(100,000,000 DEAL); more can be moved there later by an ordinary transfer."""


WELL_KNOWN_IDS = frozenset({
    *SYSTEM_ACCOUNTS.values(), PRICE_SCHEDULE_ID, GENESIS_MINT_ID, GENESIS_REWARDS_FUNDING_ID,
})
"""The ids genesis creates (plain uuid5, as every ledger already stores
them): no client may choose one (``domain.ids.check_client_id``)."""


def derived_id(purpose: str, source: UUID) -> UUID:
    """An id derived from another, for movements the ledger itself creates
    (e.g. the compensating reversal of a failed settlement): version 8, an
    id no client may choose (``domain.ids``)."""
    return ledger_id(_NAMESPACE, f"{purpose}:{source}")


def legacy_derived_id(purpose: str, source: UUID) -> UUID:
    """Where ``derived_id`` put it before version 8 was reserved."""
    return legacy_ledger_id(_NAMESPACE, f"{purpose}:{source}")


DEPOSIT_FINDINGS_RUN_ID = ledger_id(_NAMESPACE, "reconciliation:deposits")
"""The run every unassigned deposit is recorded under: the deposit scan's
own, started once and never finished (so never the latest report)."""


def deposit_id(signature: str, account_id: UUID, position: str | None = None) -> UUID:
    """The credit of one transfer transaction ``signature`` made into
    ``account_id``'s deposit address, ``position`` naming the instruction
    that made it (``"2"``, ``"2.0"`` inside instruction 2). The first
    such transfer of a transaction takes ``position`` None: the id every
    deposit had before positions were in it (one per signature and
    destination), so a credit stored then is found again by a rescan. So a
    rescan, a crash after crediting or an admin's assignment can only ever
    find it taken, and two transfers in one transaction are two deposits."""
    suffix = "" if position is None else f":{position}"
    return ledger_id(_NAMESPACE, f"deposit:{signature}:{account_id}{suffix}")


def deposit_credit_id(
    signature: str, account_id: UUID, attempt: int, position: str | None = None,
) -> UUID:
    """The credit of a deposit at its ``attempt``-th resolution: the first
    is ``deposit_id``; a return the chain refused reopens the deposit's
    finding (its credit and withdrawal compensated), and each resolution
    after that is a new movement with an id of its own."""
    return deposit_attempt_id(deposit_id(signature, account_id, position), attempt)


def deposit_attempt_id(first: UUID, attempt: int) -> UUID:
    """The ``attempt``-th credit of the deposit first credited as ``first``
    (its ``deposit_id``, position and all): derived from that id, so two
    transfers of one transaction never share an attempt's id, and a rescan
    derives the same one."""
    return first if attempt == 0 else derived_id(f"deposit-attempt-{attempt}", first)


def deposit_return_id(credit_id: UUID) -> UUID:
    """The withdrawal that returns a deposit (credited as ``credit_id``) to
    the wallet it came from: one per deposit."""
    return derived_id("deposit-return", credit_id)


def deposit_onward_id(credit_id: UUID) -> UUID:
    """The transfer that pays a deposit a system account received (credited
    as ``credit_id``) on to the user account an admin assigned it to."""
    return derived_id("deposit-onward", credit_id)


def deposit_finding_id(signature: str, account_id: UUID, position: str | None = None) -> UUID:
    """The finding of a deposit no connected wallet made (or made into a
    system account): recorded once; ``position`` as for ``deposit_id``."""
    suffix = "" if position is None else f":{position}"
    return ledger_id(_NAMESPACE, f"deposit-finding:{signature}:{account_id}{suffix}")
