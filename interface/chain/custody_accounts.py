"""Is a custody token account that already exists safe to send DEAL to?

Custody token accounts live at seed addresses of the address base
(``transactions.token_account_address``), and ledger account ids are chosen
by clients, so an account's address is known before its first movement.
Whoever holds the address base key can create that address first
(``create_account_with_seed`` needs only the base's signature) and
initialize it as a token account with an owner, or a mint, of its own
choosing. Finding the address taken, the settler would have settled into an
account the owner key does not control, and its owner could move the DEAL
out. So before the settler first relies on an existing custody token
account (instead of creating it) it checks here that the account is one the
ledger could have made itself:

- owned by the SPL Token program, a token account's size, initialized;
- of the ledger's mint;
- owned by the configured owner key;
- no delegate and no close authority: only the owner can set either, and
  the ledger never does, so one present means the owner key acted outside
  the ledger (or the account is not the ledger's).

A frozen account passes: only the mint's freeze authority freezes (on the
ledger's own mint the mint authority key, which the start-up check
verifies), it can freeze at any time, before or after this check, and a
movement into or out of a frozen account fails on chain and is compensated
by the ledger: no token is lost, unlike with any of the above.

An address that only holds lamports (owned by the System program, no data)
is no token account at all: anyone, with no key, can send lamports to any
address. It is treated as not created (``holds_only_lamports``), never as
unsafe, so a stranger's transfer cannot stop settlement; and since
``create_account_with_seed`` fails on an address holding lamports, the
settler creates it over them (``transactions.create_token_account_instructions``
with ``held``): a top-up to the rent, ``allocate_with_seed``, initialize.
"""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.token.state import TokenAccount

from interface.chain import transactions as tx


def holds_only_lamports(program: Pubkey, data: bytes) -> bool:
    """The account at a custody seed address is a bare System account (no
    data): lamports anyone may have sent, nothing created there. ``program``
    and ``data`` as in ``custody_account_problem``."""
    return program == SYSTEM_PROGRAM_ID and not data


def custody_account_problem(program: Pubkey, data: bytes, *, mint: Pubkey,
                            owner: Pubkey) -> str | None:
    """Why an existing account at a custody seed address must not receive
    the ledger's tokens (None: it is safe). ``program``: the account's owning
    program; ``data``: its data; ``mint``/``owner``: the ledger's mint and
    configured owner key."""
    if not tx.is_token_account(program, data):
        return f"it is not a token account (owning program {program}, {len(data)} bytes)"
    try:
        state = TokenAccount.from_bytes(data)
    except ValueError:
        return "it is not an initialized token account"
    if state.mint != mint:
        return f"its mint is {state.mint}, not the ledger's mint {mint}"
    if state.owner != owner:
        return f"its owner is {state.owner}, not the configured owner key {owner}"
    if state.delegate is not None:
        return f"it has a delegate, {state.delegate}"
    if state.close_authority is not None:
        return f"it has a close authority, {state.close_authority}"
    return None
