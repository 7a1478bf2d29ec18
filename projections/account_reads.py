"""Accounts as callers ask for them: one account with its balance summary
and wallets, and every account, paged and filtered by kind and status.

Both read the ``balances`` read model (which knows each account's kind,
whether it is frozen and when it was opened) in the same snapshot as the
tracking position the answer carries. Lists page by keyset on the
position that opened each account (one event, so unique), oldest first:
an account opened while a caller pages appears on a later page, never
shifts the ones already read.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.errors import AccountNotFound
from projections.cursors import decode_cursor, encode_cursor, filters_text
from projections.queries import AccountFilter, AccountView, WalletView
from projections.times import from_micros

ACTIVE, FROZEN = "active", "frozen"
ACCOUNT_STATUSES = (ACTIVE, FROZEN)
ACCOUNTS_LISTING = "accounts"
_EVERY_ACCOUNT = UUID(int=0)
"""The account a cursor of the accounts listing is bound to: none."""
_ACCOUNT_COLUMNS = (
    "SELECT b.account_id, b.kind, b.frozen, b.opened_at, b.opened_position, b.balance, b.held, "
    "(SELECT COALESCE(SUM(h.amount), 0) FROM {holds} h WHERE h.account_id = b.account_id "
    "AND h.status = 'pending' AND h.expires_at <= ?) FROM {balances} b "
)
WALLETS_PER_ACCOUNT_MAX = 1000


def account_row(store: Any, cursor: Any, account_id: UUID, now: int) -> AccountView:
    """One account, its wallets included; ``AccountNotFound`` if none."""
    cursor.execute(store.sql(_ACCOUNT_COLUMNS + "WHERE b.account_id = ?"), (now, account_id.hex))
    row = cursor.fetchone()
    if row is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    cursor.execute(store.sql(
        "SELECT address, account_id, status, connected_at, disconnected_at "
        "FROM {wallets} WHERE account_id = ? ORDER BY connected_at, address LIMIT ?"
    ), (account_id.hex, WALLETS_PER_ACCOUNT_MAX))
    wallets = [WalletView(r[0], UUID(hex=r[1]), r[2], from_micros(int(r[3])),
                          None if r[4] is None else from_micros(int(r[4])))
               for r in cursor.fetchall()]
    return _view(row, wallets)


def account_rows(store: Any, cursor: Any, accounts: AccountFilter, after: int, limit: int,
                 now: int) -> list[AccountView]:
    """Up to ``limit`` accounts opened after log position ``after`` that
    pass the filter, in the order they were opened."""
    where = ["b.opened_position > ?"]
    params: list[Any] = [now, after]
    if accounts.kind is not None:
        where.append("b.kind = ?")
        params.append(accounts.kind)
    if accounts.status is not None:
        where.append("b.frozen = ?")
        params.append(1 if accounts.status == FROZEN else 0)
    cursor.execute(store.sql(
        _ACCOUNT_COLUMNS + "WHERE " + " AND ".join(where)
        + " ORDER BY b.opened_position LIMIT ?"
    ), (*params, limit))
    return [_view(row, []) for row in cursor.fetchall()]


def accounts_after(cursor_text: str | None, accounts: AccountFilter) -> int:
    """The opened position after which a page of accounts starts; a cursor
    of the listing with other filters is refused (422)."""
    return decode_cursor(cursor_text, ACCOUNTS_LISTING, _EVERY_ACCOUNT, _filters(accounts))


def accounts_cursor(items: list[AccountView], more: bool, accounts: AccountFilter) -> str | None:
    if not more:
        return None
    return encode_cursor(ACCOUNTS_LISTING, _EVERY_ACCOUNT, items[-1].opened_position,
                         _filters(accounts))


def _filters(accounts: AccountFilter) -> str:
    return filters_text({"kind": accounts.kind, "status": accounts.status})


def _view(row: Any, wallets: list[WalletView]) -> AccountView:
    balance, held, expired = int(row[5]), int(row[6]), int(row[7])
    held_now = held - expired
    return AccountView(
        account_id=UUID(hex=row[0]), kind=row[1], status=FROZEN if int(row[2]) else ACTIVE,
        created_at=from_micros(int(row[3])), opened_position=int(row[4]), balance=balance,
        held=held_now, available=balance - held_now, wallets=wallets,
    )
