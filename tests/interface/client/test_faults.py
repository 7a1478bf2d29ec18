"""The fault the client's retry exists for, on a real serve: the request
reached the ledger and was applied, then the connection was cut before the
answer came back. The client sends it again with the same id, the ledger
answers the first outcome, and the movement exists exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import anyio
import pytest

from interface.client import AsyncLedgerClient, LedgerClient, RetryPolicy
from tests.support.cutting_proxy import CuttingProxy
from tests.support.http import ADMIN

FAST = RetryPolicy(delay_s_base=0.01, delay_s_max=0.05)


@pytest.fixture
def proxy(served) -> Iterator[CuttingProxy]:
    with CuttingProxy(served.address) as proxy:
        yield proxy


def bodies(proxy: CuttingProxy, prefix: str) -> list[dict]:
    return [json.loads(request.partition(b"\r\n\r\n")[2]) for request in proxy.sent(prefix)]


def test_a_transfer_whose_answer_was_cut_is_applied_once(client, proxy):
    source, destination = str(client.open_account().account_id), str(client.open_account().account_id)
    client.mint(source, Decimal("10"))
    proxy.cut("POST /v1/transfers ")
    with LedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client:
        moved = cut_client.transfer(source, destination, Decimal("2.5"), "cut once")
    assert proxy.cuts == 1
    sent = bodies(proxy, "POST /v1/transfers ")
    assert len(sent) == 2 and sent[0] == sent[1]
    assert sent[0]["transfer_id"] == str(moved.transfer_id)
    assert client.get_balance(destination).balance == Decimal("2.5")
    assert [entry.transfer_id for entry in client.history(destination)] == [moved.transfer_id]
    assert client.get_balance(source).balance == Decimal("7.5")


def test_a_fee_whose_answer_was_cut_twice_is_charged_once_async(client, proxy):
    account = str(client.open_account().account_id)
    client.mint(account, Decimal("10"))
    proxy.cut("POST /v1/fees ", times=2)

    async def charge():
        async with AsyncLedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client:
            return await cut_client.deduct_service_fee(account, "notification")

    fee = anyio.run(charge)
    assert proxy.cuts == 2 and len({json.dumps(b) for b in bodies(proxy, "POST /v1/fees ")}) == 1
    assert client.get_balance(account).balance == Decimal("10") - fee.fee
    assert [e.transfer_id for e in client.history(account)][1:] == [fee.charge_id]


def test_a_wallet_connection_whose_answer_was_cut_answers_connected(client, proxy):
    from solders.keypair import Keypair

    account, address = client.open_account().account_id, str(Keypair().pubkey())
    proxy.cut("POST /v1/accounts/")
    with LedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client:
        assert cut_client.connect_wallet(account, address).status == "connected"
    assert proxy.cuts == 1 and len(proxy.sent("POST /v1/accounts/")) == 2
    assert [(w.address, w.status) for w in client.wallets(account)] == [(address, "connected")]


def test_no_answer_after_every_attempt_names_the_id_to_send_again(client, proxy):
    from interface.client import LedgerConnectionError

    source, destination = str(client.open_account().account_id), str(client.open_account().account_id)
    client.mint(source, Decimal("1"))
    proxy.cut("POST /v1/transfers ", times=FAST.attempts_max)
    with LedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client, \
            pytest.raises(LedgerConnectionError) as lost:
        cut_client.transfer(source, destination, Decimal("1"))
    assert str(lost.value.command_id) in str(lost.value)
    assert len(proxy.sent("POST /v1/transfers ")) == FAST.attempts_max
    assert client.get_balance(destination).balance == Decimal("1")  # applied once, by the first


def test_a_webhook_whose_answer_was_cut_still_answers_its_secret(client, proxy):
    """No secret given: the retry sends the secret the first attempt sent
    (drawn by the client), so the caller learns the one deliveries are
    signed with, sync and async."""
    import base64

    from standardwebhooks import Webhook

    proxy.cut("POST /v1/webhooks ")
    with LedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client:
        hook = cut_client.create_webhook("http://127.0.0.1:9/hook", types=["fee.charged"])

    async def create_async():
        async with AsyncLedgerClient(proxy.url, ADMIN, retry=FAST) as cut_client:
            return await cut_client.create_webhook("http://127.0.0.1:9/hook")

    proxy.cut("POST /v1/webhooks ")
    hook_async = anyio.run(create_async)
    assert proxy.cuts == 2
    sent = bodies(proxy, "POST /v1/webhooks ")
    assert len(sent) == 4 and sent[0] == sent[1] and sent[2] == sent[3]
    for created, body in ((hook, sent[0]), (hook_async, sent[2])):
        assert created.secret is not None and created.secret == body["secret"]
        assert len(base64.b64decode(created.secret.removeprefix("whsec_"))) == 24
        Webhook(created.secret)  # a valid Standard Webhooks secret
        assert body["webhook_id"] == str(created.webhook_id)
    assert hook.secret != hook_async.secret
    listed = {item.webhook_id for item in client.webhooks()}
    assert {hook.webhook_id, hook_async.webhook_id} <= listed
    for created in (hook, hook_async):
        client.delete_webhook(created.webhook_id)
