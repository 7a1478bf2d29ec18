"""Both adapters read a landed ``transfer_checked`` as a deposit scan needs
it: source and destination token accounts, the source's owner, the mint
and the amount; the ledger's own movements name the custody owner."""

from __future__ import annotations

from uuid import UUID

import pytest
from solders.pubkey import Pubkey

from application.settlement.chain_port import ChainMovement, TokenTransfer
from tests.chain.conftest import TREASURY_ID, ChainEnv
from tests.support.outside_wallets import OutsideWallet

pytestmark = pytest.mark.anyio

ACCOUNT = UUID("a11ce000-0000-4000-8000-0000000000d1")


async def _open_deposit_address(env: ChainEnv) -> str:
    """The account's custody token account, created by its first movement."""
    port = env.port
    submission = await port.sign_movements([ChainMovement(
        UUID("70000000-0000-4000-8000-0000000000d1"), TREASURY_ID, ACCOUNT, 1)])
    await port.send(submission)
    return port.token_account_address(ACCOUNT)


async def test_a_wallets_transfer_checked_is_read_with_its_owner(genesis_env: ChainEnv) -> None:
    env = genesis_env
    deposit_address = await _open_deposit_address(env)
    wallet = OutsideWallet(env.embedded, Pubkey.from_string(env.port.mint_address))
    wallet.fund(env.custody, 500)
    signature = wallet.deposit(deposit_address, 120).signature

    assert signature in await env.port.signatures_for_account(ACCOUNT)
    landed = await env.port.transaction(signature)

    assert landed is not None and landed.error is None
    assert landed.token_transfers == (TokenTransfer(
        source=wallet.token_account, source_owner=wallet.address,
        destination=deposit_address, mint=env.port.mint_address, amount=120),)
    assert await env.port.token_balance(ACCOUNT) == 121


async def test_the_ledgers_own_movement_names_the_custody_owner(genesis_env: ChainEnv) -> None:
    env = genesis_env
    await _open_deposit_address(env)
    (signature, *_) = await env.port.signatures_for_account(ACCOUNT)
    landed = await env.port.transaction(signature)

    assert landed is not None
    (moved,) = landed.token_transfers
    assert moved.source_owner == env.port.token_account_owner == str(env.custody.pubkey)
    assert moved.destination == env.port.token_account_address(ACCOUNT)


async def test_a_plain_transfer_is_read_with_the_destinations_mint(genesis_env: ChainEnv) -> None:
    """``transfer`` (instruction 3) names no mint: the destination's is read
    from the transaction's token balances."""
    env = genesis_env
    deposit_address = await _open_deposit_address(env)
    wallet = OutsideWallet(env.embedded, Pubkey.from_string(env.port.mint_address))
    wallet.fund(env.custody, 500)
    signature = wallet.transfer(deposit_address, 70, 30).signature

    landed = await env.port.transaction(signature)

    assert landed is not None and landed.error is None
    assert landed.token_transfers == tuple(TokenTransfer(
        source=wallet.token_account, source_owner=wallet.address, destination=deposit_address,
        mint=env.port.mint_address, amount=amount, instruction=index, checked=False,
    ) for index, amount in enumerate((70, 30)))
    assert [moved.position for moved in landed.token_transfers] == ["0", "1"]
    assert await env.port.token_balance(ACCOUNT) == 101


async def test_a_transfer_made_inside_another_program_is_read(genesis_env: ChainEnv) -> None:
    """A real CPI: the Associated Token Account program's RecoverNested moves
    DEAL by an inner ``transfer_checked``; both adapters read it from the
    transaction's inner instructions (LiteSVM's metadata, and JSON-RPC's
    ``meta.innerInstructions``), named by the instruction it ran inside."""
    env = genesis_env
    wallet = OutsideWallet(env.embedded, Pubkey.from_string(env.port.mint_address))
    outcome, nested, outer = wallet.recover_nested(env.custody, 250)

    landed = await env.port.transaction(outcome.signature)

    assert landed is not None and landed.error is None
    assert landed.token_transfers == (TokenTransfer(
        source=nested, source_owner=outer, destination=outer, mint=env.port.mint_address,
        amount=250, instruction=0, inner=0),)
    assert landed.token_transfers[0].position == "0.0"
    assert landed.token_deltas == {outer: 250, nested: -250}
    await env.reopen()  # the embedded chain's index keeps them across a restart
    again = await env.port.transaction(outcome.signature)
    assert again is not None and again.token_transfers == landed.token_transfers
