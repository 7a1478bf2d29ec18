"""Page cursors, bound to the listing that issued them.

A listing pages by keyset on the log position, so all a cursor needs to say
is "after position N". But a position alone fits any listing: a history
cursor handed to ``/transactions``, or one account's cursor to another
account, used to page on from a meaningless place (or from the first row)
without a word. A cursor therefore also names its listing and its account,
and one presented to any other listing is refused with 422 naming what it
belongs to; so is a cursor of the earlier unbound format (``p1:``), which
cannot say where it came from: start the listing again without one.

A cursor is bound to its listing's filters too (the time range and kind of a
history, the kind and status of the accounts listing): "after position N"
of a listing of fees, handed to a listing of transfers, would page on from
a place that listing never reached, skipping its rows before N without a
word. The filters are bound as a digest (``filters``, the caller's own text
of them, the same for the same request); another one is refused with 422.
The earlier format without it (``c2``) is refused like ``p1``.

Cursors carry no authority (a forged one only moves within a listing the key
may read anyway), so they are plain text: base64url of
``c3:<listing>:<account id hex>:<filters digest>:<position>`` (for the
movements found by a caller's reference, the hex of a UUID derived from the
reference stands in for the account's; for the unassigned deposits, the
deposit scan's reconciliation run id).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from uuid import UUID, uuid5

from domain.errors import InvalidRequest

CURSOR_VERSION = "c3"
BY_EXTERNAL_REF = "by-external-ref"
"""The movements found by a caller's reference (``GET /v1/transfers?external_ref=``)."""
DEPOSIT_FINDINGS = "deposits"
"""The unassigned deposits (``GET /v1/reconciliations/deposits``), bound to
the deposit scan's reconciliation run in place of an account."""
LISTINGS = frozenset({"history", "transactions", "accounts", "history-desc",
                      "transactions-desc", BY_EXTERNAL_REF, f"{BY_EXTERNAL_REF}-desc",
                      DEPOSIT_FINDINGS})
_REFERENCE_NAMESPACE = UUID("5b0c7a1e-6d2f-4c59-9a43-2f1e8d7c6b50")
_OWNER = {BY_EXTERNAL_REF: "external_ref", DEPOSIT_FINDINGS: "reconciliation run"}
"""What a listing's cursor is bound to, when not an account."""
CURSOR_TEXT_LENGTH_MAX = 200
"""Cursors this module writes are under 100 characters."""
_POSITION_MAX = 2**63 - 1
"""The stores' largest position (a signed 64-bit integer)."""
_EARLIER_FORMATS = {"p1": 2, "c2": 4}
"""Earlier versions' formats and their number of fields: ``p1`` named no
listing, ``c2`` no filters."""
_FILTERS_DIGEST_BYTES = 6


def reference_key(external_ref: str) -> UUID:
    """What a cursor of the movements found by ``external_ref`` is bound to
    in place of an account: a cursor of one reference is refused for another."""
    return uuid5(_REFERENCE_NAMESPACE, external_ref)


def encode_cursor(listing: str, account_id: UUID, position: int, filters: str = "") -> str:
    """The cursor of the page of ``listing`` that starts after ``position``;
    ``filters`` names the listing's filters (empty: none)."""
    if listing not in LISTINGS:
        raise ValueError(f"no listing named {listing!r}")  # a programmer error
    text = f"{CURSOR_VERSION}:{listing}:{account_id.hex}:{_digest(filters)}:{position}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, listing: str, account_id: UUID, filters: str = "") -> int:
    """The position after which the next page starts (0 without a cursor).

    Raises ``InvalidRequest`` (422) for text this service did not issue, a
    cursor of another listing, another account or other ``filters``, or of
    an earlier format.
    """
    if cursor is None:
        return 0
    version, cursor_listing, account_hex, digest, position = _fields(cursor)
    if version in _EARLIER_FORMATS:
        raise _refused("was issued by an earlier version and names no listing or filters; "
                       "start the listing again without a cursor")
    if cursor_listing != listing:
        raise _refused(f"belongs to the {cursor_listing} listing, not {listing}")
    if account_hex != account_id.hex:
        owner = _OWNER.get(listing.removesuffix("-desc"), "account")
        raise _refused(f"belongs to another {owner}'s {listing}")
    if digest != _digest(filters):
        raise _refused(f"belongs to the {listing} listing with other filters; "
                       "send the filters the cursor's first page was asked with")
    return position


def filters_text(filters: dict[str, str | None]) -> str:
    """A listing's filters as a cursor binds them: the given ones by name,
    in the order named (empty when none is given, as for no filters)."""
    return "&".join(f"{name}={value}" for name, value in filters.items() if value is not None)


def _digest(filters: str) -> str:
    return hashlib.blake2b(filters.encode(), digest_size=_FILTERS_DIGEST_BYTES).hexdigest()


def _fields(cursor: str) -> tuple[str, str, str, str, int]:
    if len(cursor) > CURSOR_TEXT_LENGTH_MAX:
        raise _refused(f"is longer than {CURSOR_TEXT_LENGTH_MAX} characters")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _not_issued() from None
    parts = text.split(":")
    if _EARLIER_FORMATS.get(parts[0]) == len(parts):
        return parts[0], "", "", "", 0
    if len(parts) != 5 or parts[0] != CURSOR_VERSION or parts[1] not in LISTINGS:
        raise _not_issued()
    _, listing, account_hex, digest, digits = parts
    if not (digits.isascii() and digits.isdigit() and int(digits) <= _POSITION_MAX):
        raise _not_issued()
    return CURSOR_VERSION, listing, account_hex, digest, int(digits)


def _not_issued() -> InvalidRequest:
    return _refused("is not one this service issued")


def _refused(rule: str) -> InvalidRequest:
    return InvalidRequest(f"cursor: {rule}")
