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
- for no deposit return, ever: a return pays into the token account the
  deposit came from, as it is (``Movement.token_account``). Creating the
  sender's account let a stranger drain the fee payer: send 1 base unit
  from a fresh wallet, close the account, wait for the return, ~2,034,280
  lamports each time (found by a reviewer). A return whose account was
  closed, or holds no DEAL any more, fails and reopens its finding
  (``deposit_source_account_missing``). A return recorded before returns
  named that account goes to the wallet's associated token account, which
  it creates no more either.

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
SOURCE_MISSING_ERRORS = (MISSING_ACCOUNT_ERROR, '{"Custom":3}', '"IncorrectProgramId"')
"""A return's token account does not exist or is no token account
(InvalidAccountData, IncorrectProgramId), or holds another mint (the token
program's MintMismatch, custom error 3)."""


def created_wallet_accounts(
    store: SettlementStore, batch: list[Movement], creations_max: int
) -> set[UUID]:
    """The withdrawals of ``batch`` whose transaction creates their wallet's
    associated token account when missing."""
    counted = [movement for movement in batch
               if movement.address is not None and not movement.deposit_return]
    paid = store.wallets_withdrawn_to([movement.address for movement in counted
                                       if movement.address is not None])
    granted = {source: store.first_wallets_withdrawn_to(source, creations_max)
               for source in {movement.source for movement in counted}}
    return {movement.transfer_id for movement in counted
            if movement.address not in paid and movement.address in granted[movement.source]}


def failure_reason(
    store: SettlementStore, transfer_id: UUID, error: str, creations_max: int
) -> str:
    """The chain's error, said plainly when a withdrawal whose transaction
    created no token account found none at its wallet, or a deposit return
    found no DEAL token account where the deposit came from: the client and
    the admin read it in the compensation's reason
    (``wallet_token_account_missing``, ``deposit_source_account_missing``)."""
    movement = store.movement(transfer_id)
    if movement is None or movement.address is None:
        return error
    if movement.token_account is not None:
        return _source_missing(movement.token_account, error)
    if MISSING_ACCOUNT_ERROR not in error or transfer_id in created_wallet_accounts(
            store, [movement], creations_max):
        return error
    wallet = movement.address
    if movement.deposit_return:
        why = (f"wallet {wallet} has no DEAL token account and the ledger creates none for a "
               f"deposit return (this one was recorded before returns went to the deposit's "
               f"own token account: return the deposit again)")
    elif store.wallets_withdrawn_to([wallet]):
        why = (f"the ledger created the DEAL token account of wallet {wallet} once and pays "
               f"for it never again; the wallet closed it")
    else:
        why = (f"wallet {wallet} has no DEAL token account and the ledger creates one for at "
               f"most {creations_max} wallets of an account, the first it withdrew to")
    return (f"wallet_token_account_missing: {why}, so the wallet must create its associated "
            f"token account itself before withdrawing ({error})")


def _source_missing(token_account: str, error: str) -> str:
    """A return refused because its token account is gone or holds another
    mint; any other refusal (a frozen account) as the chain said it."""
    if not any(sign in error for sign in SOURCE_MISSING_ERRORS):
        return error
    return (f"deposit_source_account_missing: token account {token_account}, which the "
            f"deposit came from, no longer exists or is no DEAL token account any more "
            f"(closed, or opened again for another mint); a return goes only there and "
            f"creates no account, so the deposit is unassigned again ({error})")
