"""Addresses the ledger controls, which no account may connect as a wallet.

A wallet is where a withdrawal sends tokens and whose token accounts a
deposit is credited from. Were one of the ledger's own keys or token
accounts a wallet, tokens would loop inside custody: a withdrawal to the
custody owner lands on a token account the ledger owns but does not book,
and every settled transfer out of a custody token account (the custody
owner signs them all) into the account's deposit address would look like a
deposit from that wallet and be credited again.

What this process can know without asking the chain:

- the keys of every power (``CustodyKeys``: the address base, fee payer,
  custody owner, mint authority and the anchor signer derived from the
  address base) as the settings and the data dir name them, and the mint
  (DEALS_SOLANA_MINT, or derived from the address base);
- every account's deposit address (its custody token account), derived from
  the address base and the account's id: the account being connected to at
  once, the system accounts always, and every other account from the read
  models (``DepositAddresses``), which the caller brings up to the log's
  head first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from uuid import UUID

from solders.pubkey import Pubkey

from domain.errors import InvalidWalletAddress
from domain.system import SYSTEM_ACCOUNTS
from interface.chain import transactions as tx
from interface.chain.custody import CustodyKeyError, CustodyKeys
from interface.wiring.settings import Settings
from interface.wiring.settler import custody_key, custody_keys, mint_address
from projections.account_reads import accounts_cursor
from projections.queries import PAGE_SIZE_MAX, AccountFilter, LedgerQueries, ReadPoint

logger = logging.getLogger(__name__)


def key_roles(keys: CustodyKeys, mint: str) -> dict[str, str]:
    """Each key and the mint, by address: what it is, in a refusal's words.
    One key may hold several powers (every power defaults to the custody
    key): the refusal names them all."""
    roles: dict[str, list[str]] = {}
    for address, role in [
        (keys.address_base, "the custody key (the address base)"),
        (keys.fee_payer, "the fee payer"), (keys.owner, "the custody owner"),
        (keys.mint_authority, "the mint authority"), (keys.anchor, "the anchor signer"),
    ]:
        roles.setdefault(str(address), []).append(role)
    roles.setdefault(mint, []).append("the DEAL mint")
    return {address: " and ".join(names) for address, names in roles.items()}


class DepositAddresses:
    """Deposit address -> account, for every account the read models list,
    derived once each: ``refresh`` reads only the accounts opened since the
    last (a keyset page by opening position, usually empty)."""

    def __init__(self, address_base: Pubkey) -> None:
        self._base = address_base
        self._owners: dict[str, UUID] = {}
        self._cursor: str | None = None
        self._lock = threading.Lock()

    def add(self, accounts: Iterable[UUID]) -> None:
        for account_id in accounts:
            self._owners[self.address_of(account_id)] = account_id

    def address_of(self, account_id: UUID) -> str:
        return str(tx.token_account_address(self._base, account_id))

    def owner_of(self, address: str) -> UUID | None:
        return self._owners.get(address)

    def refresh(self, queries: LedgerQueries, point: ReadPoint) -> None:
        """Take in the accounts opened since the last refresh, up to ``point``."""
        with self._lock:
            while True:
                page = queries.accounts(AccountFilter(), limit=PAGE_SIZE_MAX,
                                        cursor=self._cursor, point=point)
                self.add(view.account_id for view in page.items)
                if page.items:
                    self._cursor = accounts_cursor(page.items, True, AccountFilter())
                if not page.has_more:
                    return


class LedgerAddresses:
    """Refuses, as a wallet, any address ``key_roles`` or a deposit address names."""

    def __init__(self, roles: dict[str, str], deposits: DepositAddresses) -> None:
        self.roles = roles
        self.deposits = deposits
        self.deposits.add(SYSTEM_ACCOUNTS.values())

    def what_is(self, address: str, account_id: UUID) -> str | None:
        """What the ledger uses ``address`` for, or None: not the ledger's."""
        role = self.roles.get(address)
        if role is not None:
            return role
        if address == self.deposits.address_of(account_id):
            return f"the deposit address (custody token account) of account {account_id}"
        owner = self.deposits.owner_of(address)
        if owner is not None:
            return f"the deposit address (custody token account) of account {owner}"
        return None

    def refuse(self, address: str, account_id: UUID) -> None:
        what = self.what_is(address, account_id)
        if what is not None:
            raise InvalidWalletAddress(
                f"wallet address {address} is {what}, an address the ledger controls: as a "
                "user's wallet, withdrawals to it and deposits from it would move tokens "
                "within custody")


def ledger_addresses(settings: Settings) -> LedgerAddresses:
    """From the keys this process's settings and data dir name (the custody
    key alone when a role's key file cannot be read here: its role then
    names the custody key, as the settler would find it)."""
    try:
        keys = custody_keys(settings)
    except CustodyKeyError as error:
        logger.warning("wallet checks know the custody key only: %s", error)
        keys = CustodyKeys(custody_key(settings))
    return LedgerAddresses(key_roles(keys, mint_address(settings)),
                           DepositAddresses(keys.address_base))
