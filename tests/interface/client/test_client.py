"""The client against a real ``deals-ledger serve``: every method in the
platform's words, Decimal amounts, typed refusals, pages iterated to the
end, and reads that reflect the client's own writes."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import anyio
import pytest

from interface.client import (
    AccountFrozenError,
    AsyncLedgerClient,
    HoldNotPendingError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    InvalidAmountError,
    InvalidWalletAddressError,
    LedgerClient,
    UnauthorizedError,
)
from tests.support.http import ADMIN, WRITER, wait_until


def funded(client: LedgerClient, amount: str = "100") -> str:
    account = client.open_account().account_id
    client.mint(account, Decimal(amount))
    return str(account)


def settled(client: LedgerClient, transfer_id: str) -> None:
    """Wait for the server's settler to settle a movement on its embedded
    chain: only a settled movement may be reversed."""
    wait_until(lambda: client.get_transfer(transfer_id).status == "settled", 120,
               f"transfer {transfer_id} to settle")


def test_moves_money_in_decimals_and_reads_its_own_writes(client):
    source, destination = funded(client), str(client.open_account().account_id)
    moved = client.transfer(source, destination, Decimal("0.1"), "deal 7")
    assert (moved.amount, moved.from_balance, moved.to_balance) == (
        Decimal("0.1"), Decimal("99.9"), Decimal("0.1"))
    assert client.position >= moved.position
    balance = client.get_balance(destination)
    assert balance.balance == Decimal("0.1") and balance.position >= moved.position
    assert client.get_transfer(moved.transfer_id).reason == "deal 7"


def test_reads_its_own_writes_with_eventual_consistency(served):
    with LedgerClient(served.url, ADMIN, consistency="eventual") as client:
        source, destination = funded(client), str(client.open_account().account_id)
        for n in range(1, 6):
            moved = client.transfer(source, destination, Decimal("1"))
            balance = client.get_balance(destination)
            assert balance.position >= moved.position and balance.balance == n


def test_fees_rewards_and_holds_in_the_platform_words(client):
    account = funded(client, "50")
    fee = client.deduct_service_fee(account, "search")
    assert fee.fee > 0 and fee.balance == Decimal("50") - fee.fee
    reward = client.distribute_reward(account, Decimal("2.5"), "referral")
    assert reward.balance == fee.balance + Decimal("2.5")
    hold = client.place_hold(account, Decimal("10"))
    assert client.get_balance(account).held == Decimal("10")
    captured = client.capture(hold.hold_id, Decimal("4"))
    assert captured.amount == Decimal("4")
    with pytest.raises(HoldNotPendingError):
        client.void(hold.hold_id)
    released = client.void(client.place_hold(account, service_type="analysis").hold_id)
    assert released.status == "voided"
    assert client.get_balance(account).held == 0


def test_an_agent_spends_within_its_allowance(client):
    owner, agent, shop = funded(client), str(uuid4()), str(uuid4())
    client.open_account(agent)
    client.open_account(shop)
    assert client.approve(owner, agent, Decimal("5")).amount == Decimal("5")
    client.transfer_from(agent, owner, shop, Decimal("3"))
    assert client.allowance(owner, agent).amount == Decimal("2")


def test_mint_and_burn_move_the_supply(client):
    account = funded(client, "10")
    burnt = client.burn(account, Decimal("4"))
    assert burnt.kind == "burn" and burnt.from_balance == Decimal("6")


def test_history_and_transactions_iterate_over_every_page(client):
    source, destination = funded(client), str(client.open_account().account_id)
    moved = [client.transfer(source, destination, Decimal(n)).transfer_id for n in range(1, 8)]
    history = list(client.history(destination, page_size=2))
    assert [entry.transfer_id for entry in history] == moved
    assert history[-1].balance_after == Decimal(28)
    assert [t.transfer_id for t in client.transactions(destination, page_size=3)] == moved
    newest = list(client.history(destination, page_size=2, order="desc"))
    assert [entry.transfer_id for entry in newest] == moved[::-1]
    since = history[2].created_at
    assert [t.transfer_id for t in client.transactions(destination, since=since, kind="transfer",
                                                       order="desc")] == moved[:1:-1]
    assert list(client.history(destination, type="fee")) == []
    assert list(client.history(destination, kind="fee")) == []


def test_a_wallet_is_connected_and_disconnected(client):
    account = client.open_account().account_id
    address = _fresh_address()
    assert client.connect_wallet(account, address).status == "connected"
    assert [w.address for w in client.wallets(account)] == [address]
    assert client.disconnect_wallet(account, address).status == "disconnected"
    with pytest.raises(InvalidWalletAddressError):
        client.connect_wallet(account, "not-base58-0OIl")


def test_an_account_and_the_list_of_accounts(client):
    account = funded(client, "7")
    address = _fresh_address()
    client.connect_wallet(account, address)
    details = client.get_account(account)
    assert (details.kind, details.status, details.balance) == ("user", "active", Decimal("7"))
    assert [w.address for w in details.wallets] == [address]
    assert details.token_account and details.chain_balance is None
    listed = [a.account_id for a in client.list_accounts(kind="user", page_size=2)]
    assert details.account_id in listed and len(listed) == len(set(listed))
    treasury = list(client.list_accounts(kind="treasury"))
    assert [a.account_id for a in treasury] == [client.system().treasury]


def test_a_service_types_price_rules(client):
    pricing = client.price_rules("goal")
    assert (pricing.service_type, pricing.default_cost) == ("goal", Decimal("1"))
    assert pricing.position > 0 and isinstance(pricing.rules, tuple)


def test_a_price_rule_is_deactivated_once(client, served):
    import httpx

    from interface.client.errors import PriceRuleNotFoundError

    set_rule = httpx.put(f"{served.url}/v1/pricing/notification", json={"token_cost": "0.5"},
                         headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    position = set_rule.raise_for_status().json()["position"]
    done = client.deactivate_price_rule("notification", position)
    assert (done.rule_position, done.is_active) == (position, False)
    assert client.deactivate_price_rule("notification", position).rule_position == position
    rule = next(r for r in client.price_rules("notification").rules if r.position == position)
    assert (rule.is_active, rule.deactivated_by) == (False, "admin")
    with pytest.raises(PriceRuleNotFoundError) as refused:
        client.deactivate_price_rule("goal", position)
    assert refused.value.status == 404


def test_refusals_are_typed_and_nothing_moves(client, served):
    source, destination = funded(client, "1"), str(client.open_account().account_id)
    with pytest.raises(InsufficientBalanceError) as refused:
        client.transfer(source, destination, Decimal("2"))
    assert refused.value.status == 402 and refused.value.request_id
    with pytest.raises(InvalidAmountError):
        client.transfer(source, destination, Decimal("0.000000001"))
    transfer_id = uuid4()
    client.transfer(source, destination, Decimal("0.5"), transfer_id=transfer_id)
    with pytest.raises(IdempotencyConflictError):
        client.transfer(source, destination, Decimal("0.6"), transfer_id=transfer_id)
    with LedgerClient(served.url, "wrong-token") as stranger, pytest.raises(UnauthorizedError):
        stranger.get_balance(source)
    assert client.get_balance(source).balance == Decimal("0.5")


def test_a_frozen_account_is_refused_by_name(client, served):
    import httpx

    account = funded(client, "3")
    httpx.post(f"{served.url}/v1/accounts/{account}/freeze",
               headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30).raise_for_status()
    with LedgerClient(served.url, WRITER) as writer, pytest.raises(AccountFrozenError):
        writer.deduct_service_fee(account, "search")


def test_a_float_amount_is_refused_before_anything_is_sent(client):
    with pytest.raises(TypeError, match="float"):
        client.transfer(str(uuid4()), str(uuid4()), 0.1)  # type: ignore[arg-type]


def test_settlement_audit_and_reconciliation(client):
    account = funded(client, "5")
    moved = client.transfer(account, str(client.open_account().account_id), Decimal("1"))
    assert client.wait_for_settlement(moved.transfer_id).status == "settled"
    report = client.audit_replay()
    assert report.supply_ok and report.mismatches == ()
    assert client.reconcile().checked_accounts >= 1


def test_a_reconciliation_answers_the_position_the_client_remembers(served, client):
    """A run records itself in the log: its answer's position is past the
    last movement and is what this client's next reads wait for."""
    moved = client.mint(client.open_account().account_id, Decimal("1"))
    with LedgerClient(served.url, ADMIN) as fresh:
        run = fresh.reconcile()
        assert run.position > moved.position and fresh.position == run.position


def test_the_async_client_does_the_same(served):
    async def scenario() -> list:
        async with AsyncLedgerClient(served.url, ADMIN, consistency="eventual") as client:
            account = (await client.open_account()).account_id
            await client.mint(account, Decimal("20"))
            fee = await client.deduct_service_fee(account, "goal", external_ref="goal-7",
                                                  metadata={"goal_id": "7"})
            await client.distribute_reward(account, Decimal("1"), "streak")
            charged = await client.get_transfer(fee.charge_id)
            assert (charged.external_ref, charged.metadata) == ("goal-7", {"goal_id": "7"})
            found = [t.transfer_id async for t in client.find_transfers("goal-7")]
            assert fee.charge_id in found
            audited = [e async for e in client.audit_events(aggregate_id=fee.charge_id)]
            assert audited[0].decoded and audited[0].decoded["amount"] == str(fee.fee)
            newest = await client.history_page(account, page_size=1, order="desc")
            assert [e.type for e in newest.items] == ["reward"] and newest.has_more
            balance = await client.get_balance(account)
            assert balance.balance == Decimal("21") - fee.fee
            assert (await client.get_account(account)).balance == balance.balance
            assert [a async for a in client.list_accounts(kind="rewards")]
            return [entry.change async for entry in client.history(account, page_size=1)]

    assert anyio.run(scenario)[0] == Decimal("20")


def _fresh_address() -> str:
    """A valid Solana address no other test connects (a new key's)."""
    from solders.keypair import Keypair

    return str(Keypair().pubkey())


def test_a_transfer_carries_the_callers_references_and_they_are_part_of_the_request(client):
    source, destination = str(client.open_account().account_id), str(client.open_account().account_id)
    client.mint(source, Decimal("5"))
    refs = {"metadata": {"order_id": "ord-7"}, "external_ref": "ord-7"}
    moved = client.transfer(source, destination, Decimal("1"), **refs)
    again = client.transfer(source, destination, Decimal("1"), transfer_id=moved.transfer_id,
                            **refs)
    assert again.transfer_id == moved.transfer_id
    with pytest.raises(IdempotencyConflictError):
        client.transfer(source, destination, Decimal("1"), transfer_id=moved.transfer_id,
                        metadata={"order_id": "ord-8"}, external_ref="ord-7")
    assert client.get_balance(destination).balance == Decimal("1")


def test_every_movement_command_carries_the_callers_references(client):
    """Fee, reward, mint, burn and hold take ``metadata`` and ``external_ref``
    as a transfer does, and every read of the movement shows them (and a
    reward its ``reward_type``)."""
    account = str(client.open_account().account_id)
    ref = uuid4().hex

    def refs(name: str) -> dict:
        return {"metadata": {"command": name, "n": "1"}, "external_ref": f"{ref}-{name}"}

    made = {
        "mint": client.mint(account, Decimal("9"), **refs("mint")).transfer_id,
        "fee": client.deduct_service_fee(account, "search", **refs("fee")).charge_id,
        "reward": client.distribute_reward(account, Decimal("1"), "streak",
                                           **refs("reward")).reward_id,
        "burn": client.burn(account, Decimal("1"), **refs("burn")).transfer_id,
        "hold": client.place_hold(account, Decimal("2"), **refs("hold")).hold_id,
    }
    for name, movement_id in made.items():
        read = client.get_transfer(movement_id)
        assert (read.metadata, read.external_ref) == (refs(name)["metadata"],
                                                      refs(name)["external_ref"]), name
        assert read.reward_type == ("streak" if name == "reward" else None), name
    listed = {t.transfer_id: t for t in client.transactions(account)}
    assert {listed[i].external_ref for i in made.values()} == {
        f"{ref}-{name}" for name in made}
    assert listed[made["reward"]].reward_type == "streak"


def test_a_fee_repeated_with_another_reference_is_refused_naming_it(client):
    account = funded(client, "5")
    fee = client.deduct_service_fee(account, "search", external_ref="inv-1")
    again = client.deduct_service_fee(account, "search", charge_id=fee.charge_id,
                                      external_ref="inv-1")
    assert again.position == fee.position
    with pytest.raises(IdempotencyConflictError) as refused:
        client.deduct_service_fee(account, "search", charge_id=fee.charge_id,
                                  external_ref="inv-2", metadata={"k": "v"})
    assert "'metadata' and 'external_ref'" in refused.value.message
    assert "inv-1" not in refused.value.message
    assert client.get_balance(account).balance == Decimal("5") - fee.fee


def test_a_screen_pages_history_newest_first_on_demand(client):
    source, destination = funded(client), str(client.open_account().account_id)
    moved = [client.transfer(source, destination, Decimal(n)).transfer_id for n in range(1, 6)]
    first = client.history_page(destination, page_size=2, order="desc")
    assert [e.transfer_id for e in first.items] == moved[:2:-1]
    assert first.has_more and first.next_cursor and first.position > 0
    rest = client.history_page(destination, page_size=3, order="desc", cursor=first.next_cursor)
    assert [e.transfer_id for e in rest.items] == moved[2::-1]
    assert (rest.has_more, rest.next_cursor) == (False, None)
    page = client.transactions_page(destination, page_size=10, kind="transfer")
    assert [t.transfer_id for t in page.items] == moved and not page.has_more


def test_a_batch_answers_each_item_and_a_reversal_undoes_a_transfer(client):
    from interface.client import BatchTransfer

    source, destination = funded(client, "10"), str(client.open_account().account_id)
    items = [BatchTransfer(source, destination, Decimal("4"), "part 1", external_ref="b-1",
                           metadata={"line": "1"}),
             BatchTransfer(destination, source, Decimal("500"), "part 2")]
    done = client.transfer_batch(items)
    ok, refused = done.results
    assert (ok.status, ok.error) == ("ok", None)
    assert refused.status == "error" and isinstance(refused.error, InsufficientBalanceError)
    assert refused.error.status == 402
    read = client.get_transfer(ok.transfer_id)
    assert (read.external_ref, read.metadata, read.reason) == ("b-1", {"line": "1"}, "part 1")
    with pytest.raises(InsufficientBalanceError) as aborted:
        client.transfer_batch([BatchTransfer(source, destination, Decimal("1")), items[1]],
                              atomic=True)
    assert aborted.value.item_index == 1
    assert client.get_balance(destination).balance == Decimal("4")
    settled(client, ok.transfer_id)
    reversal = client.reverse(ok.transfer_id, "refund")
    assert client.reverse(ok.transfer_id, "refund",
                          reversal_id=reversal.transfer_id).position == reversal.position
    assert client.get_transfer(ok.transfer_id).status == "reversed"
    assert client.get_balance(destination).balance == 0


CLIENT_MODELS = {
    "Account": "AccountResponse", "Balance": "BalanceResponse", "Movement": "MovementResponse",
    "FeeCharge": "FeeResponse", "Reward": "RewardResponse", "Hold": "HoldResponse",
    "Withdrawal": "WithdrawalResponse",
    "HoldCapture": "HoldCapturedResponse", "HoldRelease": "HoldReleasedResponse",
    "Allowance": "AllowanceResponse", "WalletChange": "WalletChangedResponse",
    "Wallet": "WalletResponse", "AccountSummary": "AccountItem",
    "AccountDetails": "AccountDetailResponse", "PriceRule": "PriceRuleItem",
    "PriceRuleDeactivation": "PriceRuleDeactivatedResponse",
    "ServicePricing": "ServicePricingResponse", "HistoryEntry": "HistoryItem",
    "Transaction": "TransactionResponse", "Page": "HistoryPage", "Event": "BusinessEventItem",
    "EventsPage": "EventsPage", "ReplayReport": "ReplayResponse",
    "Reconciliation": "ReconciliationResponse", "SystemInfo": "SystemResponse",
    "Webhook": "WebhookCreated", "WebhookDelivery": "DeliveryItem",
    "BatchResult": "BatchResponse", "BatchItemResult": "BatchItemResponse",
    "AuditEvent": "RawEventItem", "Finding": "FindingItem",
}
"""Each model of the client and the schema of the answer it reads."""
PAGES = ("HistoryPage", "TransactionPage", "AccountsPage", "DepositFindingsResponse")
"""Every cursor-paged listing answers as ``Page`` reads it."""


def test_the_client_models_read_every_field_the_service_answers(served):
    """A field the running service's OpenAPI document gives an answer, and
    the client's model of that answer lacks, is dropped before the caller
    sees it: each model keeps every field of its schema (by wire name), and
    every model says which schema it reads. A model field the schema lacks
    must have a default (a service that does not answer it yet reads as
    None), and one that has no default is a misspelling."""
    import dataclasses

    import httpx

    from interface.client import models

    schemas = httpx.get(f"{served.url}/openapi.json", timeout=30).raise_for_status().json()[
        "components"]["schemas"]
    defined = {name for name, value in vars(models).items()
               if dataclasses.is_dataclass(value) and value.__module__ == models.__name__}
    assert defined == set(CLIENT_MODELS), "a client model without its schema, or gone"
    differing = {}
    for model_name, schema_names in {**CLIENT_MODELS, "Page": PAGES}.items():
        model = getattr(models, model_name)
        wire = {f.metadata.get("wire", f.name) for f in dataclasses.fields(model)}
        for schema_name in (schema_names,) if isinstance(schema_names, str) else schema_names:
            answered = set(schemas[schema_name]["properties"])
            required = {f.metadata.get("wire", f.name) for f in dataclasses.fields(model)
                        if f.default is dataclasses.MISSING}
            if not answered >= required or not wire >= answered:
                differing[f"{model_name} / {schema_name}"] = {
                    "dropped": sorted(answered - wire),
                    "required, not answered": sorted(required - answered)}
    assert not differing, differing


def test_a_service_finds_its_movements_by_its_own_reference(client):
    """A payment and its refund carry one order's reference: the service
    finds both by it (newest first too), the history and the listing
    show it, and rewards filter by their type."""
    payer, shop, spender = funded(client, "20"), str(uuid4()), str(uuid4())
    client.open_account(shop)
    client.open_account(spender)
    order = f"order-{uuid4().hex}"
    paid = client.transfer(payer, shop, Decimal("5"), "order", external_ref=order,
                           metadata={"step": "pay"})
    settled(client, paid.transfer_id)
    refund = client.reverse(paid.transfer_id, "refund", external_ref=order,
                            metadata={"step": "refund"})
    client.approve(payer, spender, Decimal("1"))
    agent = client.transfer_from(spender, payer, shop, Decimal("1"), external_ref=order)
    found = list(client.find_transfers(order))
    assert [t.transfer_id for t in found] == [paid.transfer_id, refund.transfer_id,
                                              agent.transfer_id]
    assert [t.metadata for t in found] == [{"step": "pay"}, {"step": "refund"}, None]
    newest = list(client.find_transfers(order, order="desc", page_size=1, kind="transfer"))
    assert [t.transfer_id for t in newest] == [agent.transfer_id, paid.transfer_id]
    assert list(client.find_transfers(f"no-{order}")) == []
    entry = next(e for e in client.history(payer) if e.transfer_id == refund.transfer_id)
    assert (entry.external_ref, entry.metadata) == (order, {"step": "refund"})
    client.distribute_reward(payer, Decimal("1"), "streak")
    referral = client.distribute_reward(payer, Decimal("2"), "referral")
    rewarded = list(client.history(payer, reward_type="referral"))
    assert [(e.transfer_id, e.reward_type) for e in rewarded] == [
        (referral.reward_id, "referral")]
    assert [t.transfer_id for t in client.transactions(payer, reward_type="referral")] == [
        referral.reward_id]


def test_the_audit_listing_keeps_the_stored_state_and_decodes_beside_it(client):
    account = funded(client, "1.5")
    events = list(client.audit_events(aggregate_id=account, page_size=1))
    assert events and all(e.aggregate_id == UUID(account) for e in events)
    assert [e.version for e in events] == sorted(e.version for e in events)
    changed = [e for e in events if "balance_after" in e.state]
    assert changed and changed[-1].state["balance_after"] == 150_000_000
    assert changed[-1].decoded is not None
    assert Decimal(changed[-1].decoded["balance_after"]) == Decimal("1.5")
    assert changed[-1].decoded["timestamp"].endswith("Z")
