"""Cursors belong to the listing that issued them: another listing's,
another account's, the unbound format's and forged ones are refused."""

from __future__ import annotations

import base64
from uuid import uuid4

import pytest

from domain.errors import InvalidRequest
from projections.cursors import decode_cursor, encode_cursor


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("listing", ["history", "transactions"])
def test_a_cursor_reads_back_in_its_own_listing(listing):
    account = uuid4()
    assert decode_cursor(encode_cursor(listing, account, 2**63 - 1), listing, account) == 2**63 - 1


def test_no_cursor_starts_at_the_first_row():
    assert decode_cursor(None, "history", uuid4()) == 0


def test_a_cursor_of_another_listing_is_refused_naming_both():
    account = uuid4()
    with pytest.raises(InvalidRequest, match="belongs to the history listing, not transactions"):
        decode_cursor(encode_cursor("history", account, 7), "transactions", account)


def test_a_cursor_of_another_account_is_refused():
    with pytest.raises(InvalidRequest, match="another account's history"):
        decode_cursor(encode_cursor("history", uuid4(), 7), "history", uuid4())


def test_a_cursor_of_other_filters_is_refused():
    account = uuid4()
    cursor = encode_cursor("history", account, 7, "kind=fee")
    assert decode_cursor(cursor, "history", account, "kind=fee") == 7
    for other in ("", "kind=transfer"):
        with pytest.raises(InvalidRequest, match="history listing with other filters"):
            decode_cursor(cursor, "history", account, other)


@pytest.mark.parametrize("text", ["p1:7", "c2:history:{account}:7"], ids=["unbound", "unfiltered"])
def test_a_cursor_of_an_earlier_format_is_refused(text):
    account = uuid4()
    with pytest.raises(InvalidRequest, match="start the listing again"):
        decode_cursor(_raw(text.format(account=account.hex)), "history", account)


@pytest.mark.parametrize("text", [
    "c3:history:{account}:{digest}:-1", "c3:history:{account}:{digest}:9223372036854775808",
    "c3:history:{account}:{digest}:1e3", "c3:history:{account}:{digest}:\u0661",
    "c3:ledger:{account}:{digest}:1", "c4:history:{account}:{digest}:1",
    "c3:history:{account}:1", "c3:history:{account}:{digest}",
    "c3:history:{account}:{digest}:1:2", "c2:history:{account}:1:2",
])
def test_forged_cursors_are_refused(text):
    account = uuid4()
    with pytest.raises(InvalidRequest, match="^cursor: is not one this service issued"):
        decode_cursor(_raw(text.format(account=account.hex, digest=_digest_of(account))),
                      "history", account)


def _digest_of(account) -> str:
    """The filters digest of a real cursor, so only the field under test is forged."""
    return base64.urlsafe_b64decode(encode_cursor("history", account, 1) + "==").decode().split(":")[3]


def test_an_overlong_cursor_is_refused_before_it_is_decoded():
    with pytest.raises(InvalidRequest, match="longer than 200"):
        decode_cursor("A" * 201, "history", uuid4())
