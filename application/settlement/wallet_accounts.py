"""Which withdrawals create their wallet's associated token account, the fee
payer paying its rent (2,039,280 lamports on mainnet).

A withdrawal's transaction creates the account idempotently when missing
(issue 18), but a wallet can close it and collect that rent, and a new
wallet costs nothing: withdraw a unit, deposit it back, close the account,
connect the next fresh keypair, gained ~2,034,280 lamports a cycle from the
fee payer (found by reviewers). So the fee payer pays:

- once per wallet: a wallet a withdrawal (or a return) has settled to gets
  no creation again;
- for at most ``creations_max`` wallets per ledger account: the first ones
  the account withdrew to, in log order, whatever became of those
  withdrawals (a wallet past them must create its account itself). Accounts
  are opened by the calling services, so this bounds what each platform
  user can cost the fee payer: ``creations_max`` x the rent;
- for every deposit return, outside the account's count: the stranger's
  deposit brought the tokens, and only an admin returns one.

Derived from the log through the settlement store, so the same through
restarts and rebuilds, on both stores.
"""

from __future__ import annotations

from uuid import UUID

from application.settlement.store import Movement, SettlementStore

CREATIONS_MAX_DEFAULT = 3
"""DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX: a user's own wallet, a second
one and a replacement for a lost one; at mainnet's rent at most 6,117,840
lamports (~0.006 SOL) per account. A wallet past them creates its account
itself (most wallets do when they first receive a token)."""
MISSING_ACCOUNT_ERROR = '"InvalidAccountData"'
"""The token program's error for a transfer to an account that does not exist."""


def created_wallet_accounts(
    store: SettlementStore, batch: list[Movement], creations_max: int
) -> set[UUID]:
    """The withdrawals of ``batch`` whose transaction creates their wallet's
    associated token account when missing."""
    withdrawals = [movement for movement in batch if movement.address is not None]
    counted = [movement for movement in withdrawals if not movement.deposit_return]
    paid = store.wallets_withdrawn_to([movement.address for movement in counted
                                       if movement.address is not None])
    granted = {source: store.first_wallets_withdrawn_to(source, creations_max)
               for source in {movement.source for movement in counted}}
    return {movement.transfer_id for movement in withdrawals
            if movement.deposit_return
            or (movement.address not in paid and movement.address in granted[movement.source])}


def failure_reason(
    store: SettlementStore, transfer_id: UUID, error: str, creations_max: int
) -> str:
    """The chain's error, said plainly when a withdrawal whose transaction
    created no token account found none at its wallet: the client reads it
    in the compensation's reason (``wallet_token_account_missing``)."""
    movement = store.movement(transfer_id)
    if (movement is None or movement.address is None or MISSING_ACCOUNT_ERROR not in error
            or transfer_id in created_wallet_accounts(store, [movement], creations_max)):
        return error
    wallet = movement.address
    if store.wallets_withdrawn_to([wallet]):
        why = (f"the ledger created the DEAL token account of wallet {wallet} once and pays "
               f"for it never again; the wallet closed it")
    else:
        why = (f"wallet {wallet} has no DEAL token account and the ledger creates one for at "
               f"most {creations_max} wallets of an account, the first it withdrew to")
    return (f"wallet_token_account_missing: {why}, so the wallet must create its associated "
            f"token account itself before withdrawing ({error})")
