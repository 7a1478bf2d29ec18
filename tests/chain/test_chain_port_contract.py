"""The chain port's contract, run against every adapter (the ``env``
fixture is parametrized: LiteSvmChain in-process, RpcChain over JSON-RPC).

Given a chain after genesis, when movements are signed and sent, then the
balances, statuses, memos and per-account history say what happened, and
nothing ever moves twice."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application.settlement.chain_port import (
    ChainMovement,
    ChainRejectedError,
    ChainUnavailableError,
    SignedSubmission,
)
from interface.chain import transactions as tx
from interface.chain.base import TokenAccountCreationPendingError
from tests.chain.conftest import INITIAL_SUPPLY, TREASURY_ID, ChainEnv

pytestmark = pytest.mark.anyio

DEAL = 10**8


def transfer(source: UUID | None, destination: UUID | None, amount: int) -> ChainMovement:
    return ChainMovement(uuid4(), source, destination, amount)


async def settle(env: ChainEnv, *movements: ChainMovement) -> SignedSubmission:
    submission = await env.port.sign_movements(movements)
    await env.port.send(submission)
    return submission


def address(env: ChainEnv, account_id: UUID) -> Pubkey:
    return Pubkey.from_string(env.port.token_account_address(account_id))


# --- genesis ----------------------------------------------------------------


async def test_genesis_mints_the_initial_supply_to_the_treasury(genesis_env: ChainEnv) -> None:
    port = genesis_env.port
    assert await port.token_balance(TREASURY_ID) == 1_000_000_000 * 10**8
    assert port.mint_address == str(tx.mint_address(genesis_env.custody.pubkey))
    history = await port.signatures_for_account(TREASURY_ID)
    assert len(history) == 1
    genesis = await port.transaction(history[0])
    assert genesis is not None
    assert genesis.token_deltas == {port.token_account_address(TREASURY_ID): INITIAL_SUPPLY}


async def test_genesis_is_idempotent_across_restarts(genesis_env: ChainEnv) -> None:
    await genesis_env.port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    await genesis_env.reopen()
    await genesis_env.port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    assert await genesis_env.port.token_balance(TREASURY_ID) == INITIAL_SUPPLY
    assert len(await genesis_env.port.signatures_for_account(TREASURY_ID)) == 1


async def test_an_account_never_used_has_no_token_account(genesis_env: ChainEnv) -> None:
    assert await genesis_env.port.token_balance(uuid4()) is None
    assert await genesis_env.port.signatures_for_account(uuid4()) == []


# --- settlement ---------------------------------------------------------------


async def test_transfers_settle_with_balances_memos_and_status(genesis_env: ChainEnv) -> None:
    port, alice, bob = genesis_env.port, uuid4(), uuid4()
    to_alice, to_bob = transfer(TREASURY_ID, alice, 3 * DEAL), transfer(TREASURY_ID, bob, 5)
    height_at_signing = await port.block_height()

    submission = await settle(genesis_env, to_alice, to_bob)

    assert submission.transfer_ids == (to_alice.transfer_id, to_bob.transfer_id)
    assert submission.last_valid_block_height == height_at_signing + 150
    assert await port.token_balance(alice) == 3 * DEAL
    assert await port.token_balance(bob) == 5
    assert await port.token_balance(TREASURY_ID) == INITIAL_SUPPLY - 3 * DEAL - 5
    status = (await port.signature_statuses([submission.signature]))[submission.signature]
    assert status is not None
    assert (status.error, status.confirmation) == (None, "finalized")
    assert status.slot == height_at_signing
    landed = await port.transaction(submission.signature)
    assert landed is not None
    assert landed.slot == status.slot and landed.error is None
    assert landed.memo_transfer_ids == (to_alice.transfer_id, to_bob.transfer_id)
    assert landed.token_deltas == {
        port.token_account_address(TREASURY_ID): -(3 * DEAL + 5),
        port.token_account_address(alice): 3 * DEAL,
        port.token_account_address(bob): 5,
    }


async def test_mint_and_burn_settle(genesis_env: ChainEnv) -> None:
    port, rewards = genesis_env.port, uuid4()
    mint = transfer(None, rewards, 7 * DEAL)
    await settle(genesis_env, mint)
    burn = transfer(rewards, None, 2 * DEAL)
    burned = await settle(genesis_env, burn)

    assert await port.token_balance(rewards) == 5 * DEAL
    landed = await port.transaction(burned.signature)
    assert landed is not None
    assert landed.memo_transfer_ids == (burn.transfer_id,)
    assert landed.token_deltas == {port.token_account_address(rewards): -2 * DEAL}
    assert await port.token_balance(TREASURY_ID) == INITIAL_SUPPLY


async def test_signing_sends_nothing(genesis_env: ChainEnv) -> None:
    port, alice = genesis_env.port, uuid4()
    submission = await port.sign_movements([transfer(TREASURY_ID, alice, 1)])
    assert (await port.signature_statuses([submission.signature])) == {submission.signature: None}
    assert await port.token_balance(alice) is None
    assert await port.transaction(submission.signature) is None


async def test_a_resent_submission_moves_once(genesis_env: ChainEnv) -> None:
    port, alice = genesis_env.port, uuid4()
    submission = await settle(genesis_env, transfer(TREASURY_ID, alice, 10))
    await port.send(submission)
    await port.send(submission)
    assert await port.token_balance(alice) == 10
    assert await port.signatures_for_account(alice) == [submission.signature]


async def test_a_landed_submission_resent_after_expiry_is_still_success(
    genesis_env: ChainEnv,
) -> None:
    port, alice = genesis_env.port, uuid4()
    submission = await settle(genesis_env, transfer(TREASURY_ID, alice, 10))
    genesis_env.embedded.expire_blockhash()
    await port.send(submission)
    assert await port.token_balance(alice) == 10


# --- refusals -------------------------------------------------------------------


async def test_transfer_into_an_account_frozen_on_chain_is_rejected(
    genesis_env: ChainEnv,
) -> None:
    """Both adapters send with preflight, so the refusal is ChainRejectedError
    from send (never a landed status with an error) and nothing moves."""
    port, alice = genesis_env.port, uuid4()
    await settle(genesis_env, transfer(TREASURY_ID, alice, 10))
    frozen = genesis_env.embedded.freeze_token_account(
        genesis_env.custody, address(genesis_env, alice)
    )
    assert frozen.landed is not None
    submission = await port.sign_movements([transfer(TREASURY_ID, alice, 5)])

    with pytest.raises(ChainRejectedError) as rejected:
        await port.send(submission)

    # instruction 1: the compute-unit limit comes first
    assert rejected.value.reason == '{"InstructionError":[1,{"Custom":17}]}'
    assert await port.token_balance(alice) == 10
    assert await port.signature_statuses([submission.signature]) == {submission.signature: None}


async def test_a_transaction_that_landed_failed_reports_its_error(genesis_env: ChainEnv) -> None:
    """Sent without preflight (as a skipPreflight client would), a failing
    transaction lands, pays its fee, moves no token, and says why."""
    port, alice = genesis_env.port, uuid4()
    await settle(genesis_env, transfer(TREASURY_ID, alice, 10))
    genesis_env.embedded.freeze_token_account(genesis_env.custody, address(genesis_env, alice))
    submission = await port.sign_movements([transfer(TREASURY_ID, alice, 5)])
    outcome = genesis_env.embedded.process(
        Transaction.from_bytes(submission.transaction), preflight=False
    )
    assert outcome.landed is not None

    status = (await port.signature_statuses([submission.signature]))[submission.signature]
    landed = await port.transaction(submission.signature)

    assert status is not None and status.error == '{"InstructionError":[1,{"Custom":17}]}'
    assert landed is not None and landed.error == status.error
    assert landed.token_deltas == {}
    assert await port.token_balance(alice) == 10


async def test_an_expired_submission_can_never_land(genesis_env: ChainEnv) -> None:
    port, alice = genesis_env.port, uuid4()
    submission = await port.sign_movements([transfer(TREASURY_ID, alice, 10)])
    genesis_env.drop_next_transactions(1)
    await port.send(submission)  # accepted, then lost
    assert await port.signature_statuses([submission.signature]) == {submission.signature: None}

    genesis_env.embedded.expire_blockhash()

    assert await port.block_height() > submission.last_valid_block_height
    with pytest.raises(ChainRejectedError) as rejected:
        await port.send(submission)
    assert rejected.value.reason == "BlockhashNotFound"
    assert await port.signature_statuses([submission.signature]) == {submission.signature: None}
    assert await port.token_balance(alice) is None


async def test_an_expired_submission_can_be_signed_again(genesis_env: ChainEnv) -> None:
    port, alice = genesis_env.port, uuid4()
    movement = transfer(TREASURY_ID, alice, 10)
    genesis_env.drop_next_transactions(1)
    await port.send(await port.sign_movements([movement]))
    genesis_env.embedded.expire_blockhash()

    await settle(genesis_env, movement)

    assert await port.token_balance(alice) == 10


async def test_signing_refuses_an_account_whose_creation_is_in_flight(
    genesis_env: ChainEnv,
) -> None:
    port, alice = genesis_env.port, uuid4()
    creating = await port.sign_movements([transfer(TREASURY_ID, alice, 10)])

    with pytest.raises(TokenAccountCreationPendingError) as pending:
        await port.sign_movements([transfer(TREASURY_ID, alice, 5)])
    assert isinstance(pending.value, ChainUnavailableError)

    await port.send(creating)
    await settle(genesis_env, transfer(TREASURY_ID, alice, 5))
    assert await port.token_balance(alice) == 15


async def test_invalid_movements_are_refused_before_signing(genesis_env: ChainEnv) -> None:
    port, alice, bob = genesis_env.port, uuid4(), uuid4()
    too_many = [transfer(TREASURY_ID, alice, 1)] * (port.movements_per_transaction_max + 1)
    for movements in (
        [],
        [transfer(TREASURY_ID, alice, 1) for _ in range(port.movements_per_transaction_max + 1)],
        [transfer(TREASURY_ID, alice, 0)],
        [transfer(TREASURY_ID, alice, 1.5)],  # type: ignore[arg-type]
        [transfer(alice, alice, 1)],
        [transfer(None, None, 1)],
        [too_many[0], too_many[0]],
    ):
        with pytest.raises(ValueError):
            await port.sign_movements(movements)
    assert await port.token_balance(bob) is None


# --- history -------------------------------------------------------------------


async def test_signatures_for_account_pages_newest_first_with_before(
    genesis_env: ChainEnv,
) -> None:
    port, alice = genesis_env.port, uuid4()
    sent = [
        (await settle(genesis_env, transfer(TREASURY_ID, alice, n))).signature for n in range(1, 6)
    ]

    pages = [await port.signatures_for_account(alice, limit=2)]
    while pages[-1]:
        pages.append(await port.signatures_for_account(alice, before=pages[-1][-1], limit=2))

    assert [len(page) for page in pages] == [2, 2, 1, 0]
    assert [signature for page in pages for signature in page] == sent[::-1]


async def test_a_transfer_behind_the_services_back_shows_up_without_memo(
    genesis_env: ChainEnv,
) -> None:
    port, alice = genesis_env.port, uuid4()
    await settle(genesis_env, transfer(TREASURY_ID, alice, 10))

    outcome = genesis_env.embedded.transfer_directly(
        genesis_env.custody, address(genesis_env, TREASURY_ID), address(genesis_env, alice), 7
    )

    assert outcome.landed is not None
    assert (await port.signatures_for_account(alice))[0] == outcome.signature
    landed = await port.transaction(outcome.signature)
    assert landed is not None
    assert landed.memo_transfer_ids == ()
    assert landed.token_deltas == {
        port.token_account_address(TREASURY_ID): -7,
        port.token_account_address(alice): 7,
    }
    assert await port.token_balance(alice) == 17


async def test_chain_state_and_index_survive_a_restart(genesis_env: ChainEnv) -> None:
    port, alice = genesis_env.port, uuid4()
    first = await settle(genesis_env, transfer(TREASURY_ID, alice, 10))
    history = await port.signatures_for_account(alice)
    landed = await port.transaction(first.signature)
    height = await port.block_height()

    await genesis_env.reopen()
    port = genesis_env.port

    assert await port.block_height() == height
    assert await port.token_balance(alice) == 10
    assert await port.token_balance(TREASURY_ID) == INITIAL_SUPPLY - 10
    assert await port.signatures_for_account(alice) == history
    assert await port.transaction(first.signature) == landed
    await port.send(first)  # still known as landed: no second move
    await settle(genesis_env, transfer(alice, TREASURY_ID, 4))
    assert await port.token_balance(alice) == 6
