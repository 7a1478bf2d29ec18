"""The client's own rules, against a scripted transport (no server): what
is retried and with which body, how often, what is never retried, the
read-your-writes position, and amounts that are never floats."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest

from interface.client import (
    InsufficientBalanceError,
    LedgerClient,
    LedgerConnectionError,
    RetryPolicy,
    StoreDamagedError,
    UnavailableError,
)

TOKEN = "s3cret-token-value"
FAST = RetryPolicy(attempts_max=3, delay_s_base=0.001, delay_s_max=0.002, retry_after_s_max=0)
MOVED = {"transfer_id": str(uuid4()), "kind": "transfer", "status": "pending", "amount": "1",
         "from": str(uuid4()), "to": str(uuid4()), "from_balance": "0", "to_balance": "1",
         "position": 42}
BALANCE = {"account_id": str(uuid4()), "balance": "1", "held": "0", "available": "1",
           "position": 42}


class Script:
    """Answers requests in turn, recording each one."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **options) -> LedgerClient:
        return LedgerClient("http://ledger.test", TOKEN, retry=FAST,
                            transport=httpx.MockTransport(self), **options)

    def bodies(self) -> list[bytes]:
        return [request.content for request in self.requests]


def refusal(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}},
                          headers={"Retry-After": "1"})


@pytest.mark.parametrize("fault", [
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("cut"), refusal(503, "unavailable"),
], ids=["connect", "timeout", "cut", "503"])
def test_a_lost_or_unavailable_command_is_sent_again_unchanged(fault):
    script = Script(fault, httpx.Response(201, json=MOVED))
    with script.client() as client:
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"))
    first, second = script.bodies()
    assert first == second and json.loads(first)["transfer_id"]


def test_retries_are_bounded_and_the_last_error_names_the_id():
    script = Script(*[httpx.ConnectError("refused")] * 3)
    with script.client() as client, pytest.raises(LedgerConnectionError) as lost:
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"), transfer_id=MOVED["transfer_id"])
    assert len(script.requests) == 3 and str(lost.value.command_id) == MOVED["transfer_id"]
    script = Script(*[refusal(503, "unavailable")] * 3)
    with script.client() as client, pytest.raises(UnavailableError):
        client.get_balance(BALANCE["account_id"])
    assert len(script.requests) == 3


@pytest.mark.parametrize(("status", "code", "raised"), [
    (402, "insufficient_balance", InsufficientBalanceError),
    (503, "store_damaged", StoreDamagedError),
])
def test_a_refusal_is_raised_at_once(status, code, raised):
    script = Script(refusal(status, code))
    with script.client() as client, pytest.raises(raised):
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"))
    assert len(script.requests) == 1


def test_reads_ask_for_the_highest_position_seen():
    script = Script(httpx.Response(201, json=MOVED), httpx.Response(200, json=BALANCE))
    with script.client(consistency="eventual") as client:
        assert client.position == 0
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"))
        client.get_balance(BALANCE["account_id"])
    params = script.requests[1].url.params
    assert (params["min_position"], params["consistency"]) == ("42", "eventual")
    assert "min_position" not in script.requests[0].url.params


@pytest.mark.parametrize("amount", [0.1, "0.1", True, None])
def test_an_amount_that_is_not_a_decimal_is_refused_before_sending(amount):
    script = Script()
    with script.client() as client, pytest.raises(TypeError):
        client.transfer(MOVED["from"], MOVED["to"], amount)
    assert script.requests == []


def test_amounts_go_out_exactly_and_come_back_as_decimals():
    script = Script(httpx.Response(201, json={**MOVED, "amount": "0.00000001"}))
    with script.client() as client:
        moved = client.transfer(MOVED["from"], MOVED["to"], Decimal("1E-8"))
    assert json.loads(script.bodies()[0])["amount"] == "0.00000001"
    assert moved.amount == Decimal("0.00000001") and isinstance(moved.from_balance, Decimal)


def test_ids_are_drawn_when_not_given_and_kept_when_given():
    script = Script(httpx.Response(201, json=MOVED), httpx.Response(201, json=MOVED))
    with script.client() as client:
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"))
        client.transfer(MOVED["from"], MOVED["to"], Decimal("1"), transfer_id=MOVED["transfer_id"])
    drawn, given = (json.loads(body)["transfer_id"] for body in script.bodies())
    assert drawn != given == MOVED["transfer_id"]


def test_the_token_is_never_in_the_repr():
    assert TOKEN not in repr(Script().client())


def transaction(status: str) -> dict:
    return {"transfer_id": MOVED["transfer_id"], "kind": "transfer", "from": MOVED["from"],
            "to": MOVED["to"], "amount": "1", "reason": "", "status": status,
            "signature": None, "slot": None, "created_at": "2026-12-01T00:00:00Z",
            "updated_at": "2026-12-01T00:00:01Z", "position": 7, "as_of_position": 9}


def test_waiting_for_settlement_polls_until_the_chain_decides():
    script = Script(httpx.Response(200, json=transaction("pending")),
                    httpx.Response(200, json=transaction("settled")))
    with script.client() as client:
        settled = client.wait_for_settlement(MOVED["transfer_id"], poll_s=0)
    assert settled.status == "settled" and len(script.requests) == 2


def test_a_movement_that_failed_on_chain_raises_transaction_failed():
    from interface.client import TransactionFailedError

    script = Script(httpx.Response(200, json=transaction("failed")))
    with script.client() as client, pytest.raises(TransactionFailedError) as failed:
        client.wait_for_settlement(MOVED["transfer_id"])
    assert str(failed.value.transaction.transfer_id) == MOVED["transfer_id"]


def test_the_async_client_retries_the_same_request_too():
    import anyio

    from interface.client import AsyncLedgerClient

    script = Script(httpx.ReadTimeout("slow"), refusal(503, "unavailable"),
                    httpx.Response(201, json=MOVED))

    async def send():
        async with AsyncLedgerClient("http://ledger.test", TOKEN, retry=FAST,
                                     transport=httpx.MockTransport(script)) as client:
            return await client.transfer(MOVED["from"], MOVED["to"], Decimal("1"))

    anyio.run(send)
    assert len(script.requests) == 3 and len(set(script.bodies())) == 1
