"""DEALS_SOLANA_MINT: settling on a mint the operator created (8 decimals,
the custody key its mint authority, no supply yet) instead of the derived
one; any other mint stops settlement with a message naming the setting."""

from __future__ import annotations

import struct
from uuid import uuid4

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from application.settlement.chain_port import ChainError, ChainMovement
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain
from interface.chain.custody import CustodyKey
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rpc_adapter import RpcChain
from tests.chain.conftest import INITIAL_SUPPLY, RPC_TIMEOUT_S, TREASURY_ID, ChainEnv

pytestmark = pytest.mark.anyio

DEAL = 10**8


def create_mint(env: ChainEnv, custody: CustodyKey, *, decimals: int = 8,
                authority: Pubkey | None = None, seed: str = "operator-made-mint") -> Pubkey:
    """A mint made by hand at a seed address of the custody key, as an
    operator would with spl-token, outside the ledger."""
    payer = custody.pubkey
    address = Pubkey.create_with_seed(payer, seed, tx.TOKEN_PROGRAM_ID)
    env.embedded.fund(payer, 10**10)
    create = tx._create_seeded_account(
        tx.Authorities.single(payer), address, seed, 10**7, tx.MINT_ACCOUNT_LEN)
    owner = authority or payer
    data = struct.pack("<BB", 20, decimals) + bytes(owner) + b"\x00"  # InitializeMint2, no freeze
    initialize = Instruction(tx.TOKEN_PROGRAM_ID, data, [AccountMeta(address, False, True)])
    outcome = env.embedded._sign_and_process(custody, [create, initialize])
    assert outcome.landed is not None, outcome
    return address


def adapter(env: ChainEnv, custody: CustodyKey, mint: Pubkey) -> SeededTokenChain:
    if env.kind == "litesvm":
        return LiteSvmChain(env.embedded, custody, mint=mint)
    assert env.server is not None
    return RpcChain(env.server.url, custody, timeout_s=RPC_TIMEOUT_S, transport_retries_max=0,
                    mint=mint)


async def test_an_existing_mint_carries_genesis_and_every_movement(env: ChainEnv, custody):
    mint = create_mint(env, custody)
    port = adapter(env, custody, mint)
    try:
        await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)  # idempotent on it too
        alice = uuid4()
        movements = [ChainMovement(uuid4(), TREASURY_ID, alice, 5 * DEAL),
                     ChainMovement(uuid4(), None, alice, 2 * DEAL)]
        for movement in movements:
            await port.send(await port.sign_movements([movement]))
        await port.send(await port.sign_movements([ChainMovement(uuid4(), alice, None, DEAL)]))
        assert port.mint_address == str(mint) != str(tx.mint_address(custody.pubkey))
        assert await port.token_balance(TREASURY_ID) == INITIAL_SUPPLY - 5 * DEAL
        assert await port.token_balance(alice) == 6 * DEAL
        for account in (TREASURY_ID, alice):
            data = await port._account_data(Pubkey.from_string(port.token_account_address(account)))
            assert data is not None and tx.decode_token_account(data).mint == mint
        assert await port._account_data(tx.mint_address(custody.pubkey)) is None  # none made
    finally:
        await port.close()


@pytest.mark.parametrize("problem, expected", [
    ("decimals", "has 6 decimals; DEAL has 8"),
    ("authority", "mint authority is not the custody key"),
    ("missing", "no mint at that address"),
])
async def test_a_mint_the_ledger_cannot_use_stops_genesis_naming_the_setting(
    env: ChainEnv, custody, problem, expected
):
    if problem == "missing":
        mint = Pubkey.create_with_seed(custody.pubkey, "nothing-here", tx.TOKEN_PROGRAM_ID)
    elif problem == "decimals":
        mint = create_mint(env, custody, decimals=6)
    else:
        mint = create_mint(env, custody, authority=Pubkey.from_string(
            "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"))
    port = adapter(env, custody, mint)
    try:
        with pytest.raises(ChainError) as refused:
            await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    finally:
        await port.close()
    assert str(refused.value).startswith(f"DEALS_SOLANA_MINT {mint}")
    assert expected in str(refused.value)


async def test_a_mint_with_a_supply_before_genesis_is_refused(env: ChainEnv, custody):
    mint = create_mint(env, custody)
    holder = Pubkey.create_with_seed(custody.pubkey, "someone-else", tx.TOKEN_PROGRAM_ID)
    created = env.embedded._sign_and_process(custody, [
        tx._create_seeded_account(tx.Authorities.single(custody.pubkey), holder,
                                  "someone-else", 10**7, tx.TOKEN_ACCOUNT_LEN),
        Instruction(tx.TOKEN_PROGRAM_ID, struct.pack("<B", 18) + bytes(custody.pubkey),
                    [AccountMeta(holder, False, True), AccountMeta(mint, False, False)]),
        tx.mint_to_instruction(custody.pubkey, holder, DEAL, mint),
    ])
    assert created.landed is not None, created
    port = adapter(env, custody, mint)
    try:
        with pytest.raises(ChainError, match="already has a supply"):
            await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    finally:
        await port.close()
