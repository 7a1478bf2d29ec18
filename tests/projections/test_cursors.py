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


def test_a_cursor_of_the_earlier_unbound_format_is_refused():
    with pytest.raises(InvalidRequest, match="start the listing again"):
        decode_cursor(_raw("p1:7"), "history", uuid4())


@pytest.mark.parametrize("text", [
    "c2:history:{account}:-1", "c2:history:{account}:9223372036854775808",
    "c2:history:{account}:1e3", "c2:history:{account}:\u0661", "c2:ledger:{account}:1",
    "c3:history:{account}:1", "c2:history:{account}", "c2:history:{account}:1:2",
])
def test_forged_cursors_are_refused(text):
    account = uuid4()
    with pytest.raises(InvalidRequest, match="^cursor: is not one this service issued"):
        decode_cursor(_raw(text.format(account=account.hex)), "history", account)


def test_an_overlong_cursor_is_refused_before_it_is_decoded():
    with pytest.raises(InvalidRequest, match="longer than 200"):
        decode_cursor("A" * 201, "history", uuid4())
