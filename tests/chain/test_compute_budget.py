"""Priority fees (issue 18): every settlement transaction asks for the
compute units a simulation on its chain measured (plus the margin) and pays
the configured price, the chain charges exactly that, and a price that could
cost more than the cap is refused."""

from __future__ import annotations

import struct
from uuid import uuid4

import pytest
from solders.compute_budget import ID as COMPUTE_BUDGET_PROGRAM_ID
from solders.message import Message
from solders.transaction import Transaction

from application.settlement.chain_port import ChainMovement, ChainRejectedError
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain
from interface.chain.compute_budget import (
    COMPUTE_UNIT_LIMIT_MAX,
    PriorityFees,
    priority_fee_lamports,
    units_with_margin,
)
from interface.chain.embedded_store import LandedTransaction
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rpc_adapter import RpcChain
from tests.chain.conftest import RPC_TIMEOUT_S, TREASURY_ID, ChainEnv

pytestmark = pytest.mark.anyio

PRICE = 50_000  # micro-lamports per unit
FEES = PriorityFees(PRICE, cap_lamports=priority_fee_lamports(COMPUTE_UNIT_LIMIT_MAX, PRICE))
_SET_LIMIT, _SET_PRICE = 2, 3  # the compute-budget program's instruction tags


def adapter(env: ChainEnv, fees: PriorityFees | None) -> SeededTokenChain:
    """A second adapter on the environment's chain, with these fees."""
    if env.kind == "litesvm":
        return LiteSvmChain(env.embedded, env.custody, fees=fees)
    assert env.server is not None
    return RpcChain(env.server.url, env.custody, timeout_s=RPC_TIMEOUT_S,
                    transport_retries_max=0, fees=fees)


def budget(message: Message) -> dict[int, int]:
    """The compute-budget instructions of a message: tag -> value."""
    found = {}
    for instruction in message.instructions:
        if message.account_keys[instruction.program_id_index] == COMPUTE_BUDGET_PROGRAM_ID:
            data = bytes(instruction.data)
            (value,) = struct.unpack("<I" if data[0] == _SET_LIMIT else "<Q", data[1:])
            found[data[0]] = value
    return found


async def settle(env: ChainEnv, port: SeededTokenChain,
                 movements: list[ChainMovement]) -> tuple[dict[int, int], LandedTransaction]:
    submission = await port.sign_movements(movements, whole=True)
    await port.send(submission)
    landed = env.embedded.landed(submission.signature)
    assert landed is not None and landed.error is None
    return budget(Transaction.from_bytes(submission.transaction).message), landed


def transfers(count: int, destination: object) -> list[ChainMovement]:
    return [ChainMovement(uuid4(), TREASURY_ID, destination, 10 + n)  # type: ignore[arg-type]
            for n in range(count)]


async def test_a_settled_transaction_asks_for_its_measured_units_at_the_configured_price(
    genesis_env: ChainEnv,
) -> None:
    """On both adapters: the limit is the landed transaction's own units
    plus the margin (so the measurement is the chain's, not a guess), the
    price is the setting, and the fee payer paid the base fee plus exactly
    price x limit (what an unpriced transaction of the same shape does not)."""
    alice = uuid4()
    plain, priced = adapter(genesis_env, None), adapter(genesis_env, FEES)
    try:
        await settle(genesis_env, plain, transfers(1, alice))  # alice's account exists now
        for port in (plain, priced):
            for count in (1, 3):
                asked, landed = await settle(genesis_env, port, transfers(count, alice))
                price = 0 if port is plain else PRICE
                assert asked.get(_SET_PRICE, 0) == price
                assert asked[_SET_LIMIT] == units_with_margin(landed.compute_units)
                assert landed.compute_units <= asked[_SET_LIMIT] < COMPUTE_UNIT_LIMIT_MAX
                base_fee = landed.fee - priority_fee_lamports(asked[_SET_LIMIT], price)
                assert landed.pre_lamports[0] - landed.post_lamports[0] == landed.fee
                if port is plain:
                    plain_fee = landed.fee
                assert base_fee == plain_fee  # one signature each
    finally:
        await plain.close()
        await priced.close()


async def test_the_asked_limit_binds_so_it_must_be_measured(genesis_env: ChainEnv) -> None:
    """One unit under what the transaction consumes and the chain refuses
    it: a limit guessed too small would fail movements."""
    alice, chain, custody = uuid4(), genesis_env.embedded, genesis_env.custody
    port = adapter(genesis_env, FEES)
    try:
        await settle(genesis_env, port, transfers(1, alice))
        rent = chain.rent_lamports()
        blockhash, _ = chain.latest_blockhash()

        def signed(units: int) -> Transaction:
            message = tx.movements_message(tx.Authorities.single(custody.pubkey),
                                           transfers(1, alice), [], rent,
                                           blockhash, units=units, price_micro_lamports=PRICE)
            return custody.sign_transaction(message, blockhash)

        measured, refused = chain.simulate(signed(COMPUTE_UNIT_LIMIT_MAX))
        assert refused is None and measured > 0
        outcome = chain.process(signed(measured - 1))
        assert outcome.rejection is not None
        assert any("exceeded CUs meter" in line for line in outcome.rejection.logs)
        assert chain.process(signed(measured)).landed is not None
    finally:
        await port.close()


def test_a_price_that_could_exceed_the_cap_is_refused() -> None:
    """The cap bounds price x the chain's largest limit, so no measured
    transaction can pay more than it."""
    cap = priority_fee_lamports(COMPUTE_UNIT_LIMIT_MAX, PRICE)
    assert PriorityFees(PRICE, cap).cap_lamports == cap
    with pytest.raises(ValueError, match="over the cap"):
        PriorityFees(PRICE, cap - 1)
    with pytest.raises(ValueError, match="negative"):
        PriorityFees(-1, cap)


async def test_a_transaction_the_simulation_refuses_is_still_refused_by_send(
    genesis_env: ChainEnv,
) -> None:
    """No measurement (the simulation fails): the largest limit is asked
    for and sending reports the chain's reason, as without a budget."""
    alice = uuid4()
    port = adapter(genesis_env, FEES)
    try:
        await settle(genesis_env, port, transfers(1, alice))
        too_much = [ChainMovement(uuid4(), alice, TREASURY_ID, 10**6)]
        submission = await port.sign_movements(too_much)
        assert budget(Transaction.from_bytes(submission.transaction).message)[_SET_LIMIT] \
            == COMPUTE_UNIT_LIMIT_MAX
        with pytest.raises(ChainRejectedError):
            await port.send(submission)
    finally:
        await port.close()
