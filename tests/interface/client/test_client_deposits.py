"""The client's deposit calls against a real HTTP server, on SQLite and on
PostgreSQL: list the unassigned deposits page after page, assign one and
return another, each idempotent by its finding (another reason for an
assignment made is a conflict). The findings are recorded as the deposit
scan records a stranger's deposit; the calls go over HTTP like any other."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from solders.keypair import Keypair

from domain.system import EXTERNAL_ID, TREASURY_ID
from interface.client import LedgerClient
from interface.client.errors import FindingNotAdjustableError, IdempotencyConflictError
from tests.interface.test_deposit_findings_api import record_unassigned_deposits
from tests.support.http import ADMIN


@pytest.fixture
def client(api) -> Iterator[LedgerClient]:
    with LedgerClient(api.url, ADMIN) as client:
        yield client


def test_the_client_lists_assigns_and_returns_deposits(api, client):
    account = client.open_account().account_id
    sender = str(Keypair().pubkey())
    first, second, third = record_unassigned_deposits(api, str(account), 3, sender)

    page = client.deposits_page(page_size=2)
    assert [f.finding_id for f in page.items] == [first, second] and page.has_more
    rest = client.deposits_page(page_size=2, cursor=page.next_cursor)
    assert [f.finding_id for f in rest.items] == [third] and not rest.has_more
    assert [f.finding_id for f in client.deposits(page_size=2)] == [first, second, third]
    assert page.items[1].actual == Decimal("0.02") and page.items[1].adjusted_by is None

    assigned = client.assign_deposit(first, reason="ticket 4711")
    assert (assigned.kind, assigned.status, assigned.to_account, assigned.amount) == (
        "deposit", "settled", account, Decimal("0.01"))
    assert client.assign_deposit(first, reason="ticket 4711").transfer_id == assigned.transfer_id
    with pytest.raises(IdempotencyConflictError):
        client.assign_deposit(first, reason="another ticket")

    returned = client.return_deposit(second)
    assert (returned.kind, returned.from_account, returned.to_account, returned.amount) == (
        "withdrawal", account, EXTERNAL_ID, Decimal("0.02"))
    assert client.return_deposit(second).transfer_id == returned.transfer_id
    with pytest.raises(FindingNotAdjustableError):
        client.assign_deposit(second)

    listed = {f.finding_id: f.adjusted_by for f in client.deposits()}
    assert listed[first] == assigned.transfer_id and listed[third] is None
    assert client.get_balance(account).balance == Decimal("0.01")


def test_the_client_passes_a_system_accounts_deposit_on_to_a_user_account(api, client):
    user = client.open_account().account_id
    (finding,) = record_unassigned_deposits(api, str(TREASURY_ID), 1, str(Keypair().pubkey()))
    treasury_before = client.get_balance(TREASURY_ID).balance

    passed_on = client.assign_deposit(finding, reason="ticket 4712", account_id=user)

    assert (passed_on.kind, passed_on.from_account, passed_on.to_account, passed_on.amount) == (
        "transfer", TREASURY_ID, user, Decimal("0.01"))
    assert client.assign_deposit(finding, reason="ticket 4712",
                                 account_id=user).transfer_id == passed_on.transfer_id
    with pytest.raises(IdempotencyConflictError):
        client.assign_deposit(finding, reason="ticket 4712")
    assert client.get_balance(user).balance == Decimal("0.01")
    assert client.get_balance(TREASURY_ID).balance == treasury_before
