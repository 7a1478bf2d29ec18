"""Rotating each custody power on both adapters (LiteSVM in-process, and the
JSON-RPC adapter over the test server): after a rotation, settlement works
with the new key, a transaction signed by the old key is refused by the
chain, a second run finds nothing left to move (resumable), a rotation cut
short leaves the start-up check refusing the new key until it is finished,
and a power held by a third key is refused by name."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from application.settlement.chain_port import ChainError, ChainMovement
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain
from interface.chain.custody import CustodyKey, CustodyKeys
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rotation import (
    RotationError,
    move_fee_payer_sol,
    rotate_mint_authority,
    rotate_owner,
)
from interface.chain.rpc_adapter import RpcChain
from tests.chain.conftest import INITIAL_SUPPLY, TREASURY_ID, ChainEnv

pytestmark = pytest.mark.anyio

DEAL = 10**8


def port_with(env: ChainEnv, keys: CustodyKeys) -> SeededTokenChain:
    """A second adapter on the same chain, signing with ``keys``."""
    if env.kind == "litesvm":
        return LiteSvmChain(env.embedded, keys)
    assert env.server is not None
    return RpcChain(env.server.url, keys, transport_retries_max=0)


async def settle(port: SeededTokenChain, *movements: ChainMovement) -> None:
    submission = await port.sign_movements(movements)
    await port.send(submission)
    status = (await port.signature_statuses([submission.signature]))[submission.signature]
    assert status is not None and status.error is None


def transfer(source: UUID | None, destination: UUID | None, amount: int) -> ChainMovement:
    return ChainMovement(uuid4(), source, destination, amount)


def address(port: SeededTokenChain, account_id: UUID) -> Pubkey:
    return Pubkey.from_string(port.token_account_address(account_id))


async def test_the_owner_rotates_and_the_old_key_can_no_longer_move_tokens(
    genesis_env: ChainEnv,
) -> None:
    custody, port = genesis_env.custody, genesis_env.port
    assert isinstance(custody, CustodyKey)
    accounts = [uuid4() for _ in range(20)]  # more than one transaction of SetAuthority
    for account in accounts:
        await settle(port, transfer(TREASURY_ID, account, DEAL))
    new = CustodyKey(Keypair())

    report = await rotate_owner(port, new.pubkey, [TREASURY_ID, *accounts, uuid4()], TREASURY_ID)

    assert (report.moved, report.already) == (21, 0) and len(report.signatures) >= 2
    rotated = port_with(genesis_env, CustodyKeys(custody, owner=new))
    try:
        await rotated.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)  # the start-up check passes
        await settle(rotated, transfer(accounts[0], accounts[1], 5), transfer(accounts[2], None, 1))
        assert await rotated.token_balance(accounts[1]) == DEAL + 5
        stolen = genesis_env.embedded.transfer_directly(
            custody, address(port, TREASURY_ID), address(port, accounts[0]), 1)
        assert stolen.landed is None and stolen.rejection is not None
        again = await rotate_owner(rotated, new.pubkey, [TREASURY_ID, *accounts], TREASURY_ID)
        assert (again.moved, again.already, again.signatures) == (0, 21, [])
    finally:
        await rotated.close()
    with pytest.raises(ChainError, match="owner"):
        await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)  # the old key: refused at start


async def test_an_owner_rotation_cut_short_is_finished_by_running_it_again(
    genesis_env: ChainEnv,
) -> None:
    custody, port, alice = genesis_env.custody, genesis_env.port, uuid4()
    await settle(port, transfer(TREASURY_ID, alice, DEAL))
    new = CustodyKey(Keypair())
    await rotate_owner(port, new.pubkey, [alice], uuid4())  # "crashed" before the treasury
    rotated = port_with(genesis_env, CustodyKeys(custody, owner=new))
    try:
        with pytest.raises(ChainError, match="finish the rotation"):
            await rotated.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        report = await rotate_owner(port, new.pubkey, [alice, TREASURY_ID], TREASURY_ID)
        assert (report.moved, report.already) == (1, 1)
        await rotated.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        await settle(rotated, transfer(TREASURY_ID, alice, 3))
    finally:
        await rotated.close()


async def test_the_mint_authority_rotates_with_the_freeze_authority(
    genesis_env: ChainEnv,
) -> None:
    custody, port, rewards = genesis_env.custody, genesis_env.port, uuid4()
    new = CustodyKey(Keypair())

    report = await rotate_mint_authority(port, new.pubkey)

    assert report.moved == 2 and len(report.signatures) == 1
    mint = tx.decode_mint(bytes(genesis_env.embedded.get_account(port.mint).data))  # type: ignore[union-attr]
    assert (mint.mint_authority, mint.freeze_authority) == (new.pubkey, new.pubkey)
    rotated = port_with(genesis_env, CustodyKeys(custody, mint_authority=new))
    try:
        await rotated.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        await settle(rotated, transfer(None, rewards, 7 * DEAL))
        assert await rotated.token_balance(rewards) == 7 * DEAL
        with pytest.raises(ChainError):  # the old mint authority signs a mint: refused
            await settle(port, transfer(None, rewards, DEAL))
        assert (await rotate_mint_authority(rotated, new.pubkey)).already == 2
    finally:
        await rotated.close()
    with pytest.raises(ChainError, match="mint authority"):
        await port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)


async def test_the_fee_payer_rotates_and_pays_from_then_on(genesis_env: ChainEnv) -> None:
    custody, port, alice = genesis_env.custody, genesis_env.port, uuid4()
    new = CustodyKey(Keypair())
    await move_fee_payer_sol(port, new.pubkey, 10**9)  # the RPC cluster has no faucet
    # a rerun after a crash (the transfer landed, the key not yet installed)
    # tops up to the same balance: it sends nothing, not a second 10**9
    assert await move_fee_payer_sol(port, new.pubkey, 10**9) is None
    assert await port.lamports(new.pubkey) == 10**9
    rotated = port_with(genesis_env, CustodyKeys(custody, fee_payer=new))
    try:
        await rotated.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        submission = await rotated.sign_movements([transfer(TREASURY_ID, alice, DEAL)])
        await rotated.send(submission)
        landed = await rotated.transaction(submission.signature)
        assert landed is not None and landed.error is None
        assert await rotated.token_balance(alice) == DEAL
    finally:
        await rotated.close()


async def test_a_power_held_by_a_third_key_is_refused_by_name(genesis_env: ChainEnv) -> None:
    custody, port = genesis_env.custody, genesis_env.port
    assert isinstance(custody, CustodyKey)
    third, new = CustodyKey(Keypair()), Pubkey.new_unique()
    await rotate_mint_authority(port, third.pubkey)
    with pytest.raises(RotationError, match=str(third.pubkey)):
        await rotate_mint_authority(port, new)


async def test_a_rotations_transaction_reads_as_authority_changes_and_no_other_does(
    genesis_env: ChainEnv,
) -> None:
    """What reconciliation tells a rotation by (``authority_changes``), on
    both adapters: the accounts its SetAuthority instructions change; empty
    for a transaction that does anything else."""
    port, alice = genesis_env.port, uuid4()
    submission = await port.sign_movements([transfer(TREASURY_ID, alice, DEAL)])
    await port.send(submission)
    settled = await port.transaction(submission.signature)
    assert settled is not None and settled.error is None and settled.authority_changes == ()
    report = await rotate_owner(port, Keypair().pubkey(), [alice], TREASURY_ID)
    landed = await port.transaction(report.signatures[0])
    assert landed is not None and landed.error is None and not landed.token_transfers
    assert landed.authority_changes == (port.token_account_address(alice),
                                        port.token_account_address(TREASURY_ID))
