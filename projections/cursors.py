"""Page cursors, bound to the listing that issued them.

A listing pages by keyset on the log position, so all a cursor needs to say
is "after position N". But a position alone fits any listing: a history
cursor handed to ``/transactions``, or one account's cursor to another
account, used to page on from a meaningless place (or from the first row)
without a word. A cursor therefore also names its listing and its account,
and one presented to any other listing is refused with 422 naming what it
belongs to; so is a cursor of the earlier unbound format (``p1:``), which
cannot say where it came from: start the listing again without one.

Cursors carry no authority (a forged one only moves within a listing the key
may read anyway), so they are plain text: base64url of
``c2:<listing>:<account id hex>:<position>``.
"""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from domain.errors import InvalidRequest

CURSOR_VERSION = "c2"
LISTINGS = frozenset({"history", "transactions", "accounts", "history-desc",
                      "transactions-desc"})
CURSOR_TEXT_LENGTH_MAX = 200
"""Cursors this module writes are under 100 characters."""
_POSITION_MAX = 2**63 - 1
"""The stores' largest position (a signed 64-bit integer)."""
_UNBOUND_VERSION = "p1"


def encode_cursor(listing: str, account_id: UUID, position: int) -> str:
    """The cursor of the page of ``listing`` that starts after ``position``."""
    if listing not in LISTINGS:
        raise ValueError(f"no listing named {listing!r}")  # a programmer error
    text = f"{CURSOR_VERSION}:{listing}:{account_id.hex}:{position}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, listing: str, account_id: UUID) -> int:
    """The position after which the next page starts (0 without a cursor).

    Raises ``InvalidRequest`` (422) for text this service did not issue, a
    cursor of another listing or another account, or of the unbound format.
    """
    if cursor is None:
        return 0
    version, cursor_listing, account_hex, position = _fields(cursor)
    if version == _UNBOUND_VERSION:
        raise _refused("was issued by an earlier version and names no listing; "
                       "start the listing again without a cursor")
    if cursor_listing != listing:
        raise _refused(f"belongs to the {cursor_listing} listing, not {listing}")
    if account_hex != account_id.hex:
        raise _refused(f"belongs to another account's {listing}")
    return position


def _fields(cursor: str) -> tuple[str, str, str, int]:
    if len(cursor) > CURSOR_TEXT_LENGTH_MAX:
        raise _refused(f"is longer than {CURSOR_TEXT_LENGTH_MAX} characters")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _not_issued() from None
    parts = text.split(":")
    if parts[0] == _UNBOUND_VERSION and len(parts) == 2:
        return _UNBOUND_VERSION, "", "", 0
    if len(parts) != 4 or parts[0] != CURSOR_VERSION or parts[1] not in LISTINGS:
        raise _not_issued()
    _, listing, account_hex, digits = parts
    if not (digits.isascii() and digits.isdigit() and int(digits) <= _POSITION_MAX):
        raise _not_issued()
    return CURSOR_VERSION, listing, account_hex, int(digits)


def _not_issued() -> InvalidRequest:
    return _refused("is not one this service issued")


def _refused(rule: str) -> InvalidRequest:
    return InvalidRequest(f"cursor: {rule}")
