"""The shared transaction builder: deterministic addresses, instructions the
SPL Token program's own decoders agree with, packing by the real
serialized size, and the memo format (old and new)."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
import solders.system_program as sp
import spl.token.instructions as spl
from solders.compute_budget import ID as COMPUTE_BUDGET_PROGRAM_ID
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey

from application.settlement.chain_port import ChainMovement
from interface.chain import transactions as tx

AUTHORITY = Pubkey.new_unique()
ROLES = tx.Authorities.single(AUTHORITY)
SPLIT = tx.Authorities(*(Pubkey.new_unique() for _ in range(4)))  # a key per power: more signatures
RENT = tx.RentLamports(mint_account=1_461_600, token_account=2_039_280)


def movement(source: UUID | None, destination: UUID | None, amount: int = 5) -> ChainMovement:
    return ChainMovement(uuid4(), source, destination, amount)


def message_size(
    movements: list[ChainMovement], create: bool, roles: tx.Authorities = ROLES,
    held: int = 0,
) -> int:
    """With a priority price: the bounds hold with the largest budget.
    ``held``: lamports already at each address created."""
    to_create = tx.touched_account_ids(movements) if create else []
    message = tx.movements_message(roles, movements, to_create, RENT, Hash.default(),
                                   price_micro_lamports=1,
                                   held=dict.fromkeys(to_create, held))
    return tx.serialized_size(message)


def programs_of(message: Message) -> list[Pubkey]:
    return [message.account_keys[ix.program_id_index] for ix in message.instructions]


def test_the_token_account_address_is_the_seeded_address_of_the_account_id() -> None:
    account_id = uuid4()
    expected = Pubkey.create_with_seed(AUTHORITY, account_id.hex, tx.TOKEN_PROGRAM_ID)
    assert tx.token_account_address(AUTHORITY, account_id) == expected
    assert tx.token_account_address(AUTHORITY, account_id) != tx.token_account_address(
        Pubkey.new_unique(), account_id
    )


def test_the_packing_bounds_are_measured_against_the_packet_size() -> None:
    worst, best = tx.WORST_CASE_MOVEMENTS_PER_TRANSACTION, tx.MOVEMENTS_PER_TRANSACTION_MAX
    creating = [movement(uuid4(), uuid4()) for _ in range(worst + 1)]
    assert worst >= 1  # one movement always fits, whatever it creates
    for held in (0, 1):  # a creation over a stranger's lamports is the larger
        assert message_size(creating[:worst], create=True, roles=SPLIT,
                            held=held) <= tx.PACKET_DATA_SIZE
    assert message_size(creating, create=True, roles=SPLIT) > tx.PACKET_DATA_SIZE
    source, destination = uuid4(), uuid4()
    same_pair = [movement(source, destination) for _ in range(best + 1)]
    assert best > 4 * worst
    assert message_size(same_pair[:best], create=False) <= tx.PACKET_DATA_SIZE
    assert message_size(same_pair, create=False) > tx.PACKET_DATA_SIZE


@pytest.mark.parametrize("price", [0, 50_000])
def test_packing_takes_the_longest_prefix_that_fits_at_the_boundary(price: int) -> None:
    """Pack by the real size, compute-budget instructions included: the
    chosen prefix fits the packet, one more movement would not, and only
    the accounts the prefix touches are created."""
    accounts = [uuid4() for _ in range(12)]
    offered = [movement(accounts[i % 12], accounts[(i * 5 + 1) % 12])
               for i in range(tx.MOVEMENTS_PER_TRANSACTION_MAX)]
    missing = set(accounts[6:])
    packed = tx.pack_movements(ROLES, offered, missing, RENT, Hash.default(),
                               price_micro_lamports=price)
    assert packed is not None and 1 <= packed.count < len(offered)
    budget = programs_of(packed.message)[:2]
    assert budget.count(COMPUTE_BUDGET_PROGRAM_ID) == (2 if price else 1)
    assert tx.serialized_size(packed.message) <= tx.PACKET_DATA_SIZE
    carried = offered[:packed.count]
    assert packed.accounts_to_create == [
        account for account in tx.touched_account_ids(carried) if account in missing]
    one_more = offered[:packed.count + 1]
    to_create = [a for a in tx.touched_account_ids(one_more) if a in missing]
    bigger = tx.movements_message(ROLES, one_more, to_create, RENT, Hash.default(),
                                  price_micro_lamports=price)
    assert tx.serialized_size(bigger) > tx.PACKET_DATA_SIZE
    assert tx.memo_transfer_ids(tx.memo_texts(packed.message)) == tuple(
        m.transfer_id for m in carried)


def test_packing_carries_all_that_fit_when_every_account_exists() -> None:
    offered = [movement(uuid4(), uuid4()) for _ in range(3)]
    packed = tx.pack_movements(ROLES, offered, [], RENT, Hash.default())
    assert packed is not None and packed.count == 3 and packed.accounts_to_create == []


def test_an_oversized_list_is_refused() -> None:
    too_many = [movement(uuid4(), uuid4()) for _ in range(tx.MOVEMENTS_PER_TRANSACTION_MAX + 1)]
    with pytest.raises(ValueError, match="movements_must_fit_one_transaction"):
        tx.validate_movements(too_many, tx.MOVEMENTS_PER_TRANSACTION_MAX)


def test_a_message_over_the_packet_size_is_refused() -> None:
    too_many = [movement(uuid4(), uuid4())
                for _ in range(tx.WORST_CASE_MOVEMENTS_PER_TRANSACTION + 1)]
    message = tx.movements_message(
        SPLIT, too_many, tx.touched_account_ids(too_many), RENT, Hash.default()
    )
    with pytest.raises(ValueError, match="transaction_must_fit_packet"):
        tx.require_fits_packet(message)


@pytest.mark.parametrize(
    ("amount", "rule"),
    [(0, "positive"), (-1, "positive"), (2**64, "positive"), (True, "int"), (1.0, "int")],
)
def test_amounts_must_be_positive_int_base_units(amount: object, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        tx.validate_movement(ChainMovement(uuid4(), uuid4(), uuid4(), amount))  # type: ignore[arg-type]


def test_a_transfer_is_transfer_checked_and_the_memo_names_it() -> None:
    source, destination = uuid4(), uuid4()
    transfer = movement(source, destination, 12_345)
    token, memo = tx.movement_instruction(ROLES, transfer), tx.memo_instruction(
        transfer.transfer_id)
    decoded = spl.decode_transfer_checked(token)
    assert decoded.source == tx.token_account_address(AUTHORITY, source)
    assert decoded.dest == tx.token_account_address(AUTHORITY, destination)
    assert decoded.mint == tx.mint_address(AUTHORITY)
    assert (decoded.owner, decoded.amount, decoded.decimals) == (AUTHORITY, 12_345, 8)
    assert memo.program_id == tx.MEMO_PROGRAM_ID
    assert bytes(memo.data) == f"deal:{transfer.transfer_id}".encode()


def test_a_deposit_return_pays_into_its_token_account_and_creates_nothing() -> None:
    """A return goes to the deposit's own token account as it is: one
    ``transfer_checked``, no associated account created (a return created
    the sender's, the fee payer paying the rent each time it was closed)."""
    source, back_to = uuid4(), Pubkey.new_unique()
    returned = replace(movement(source, None, 7), destination_token_account=str(back_to))

    (token,) = tx.movement_instructions(ROLES, returned)

    decoded = spl.decode_transfer_checked(token)
    assert (decoded.source, decoded.dest, decoded.amount) == (
        tx.token_account_address(AUTHORITY, source), back_to, 7)
    both = replace(returned, destination_wallet=str(Pubkey.new_unique()))
    with pytest.raises(ValueError, match="a_withdrawal_goes_from_a_token_account_to_a_wallet"):
        tx.validate_movement(both)


def test_a_mint_is_mint_to_checked_and_a_burn_is_burn_checked() -> None:
    account = uuid4()
    minted = spl.decode_mint_to_checked(
        tx.movement_instruction(ROLES, movement(None, account, 7))
    )
    burned = spl.decode_burn_checked(
        tx.movement_instruction(ROLES, movement(account, None, 3))
    )
    address = tx.token_account_address(AUTHORITY, account)
    assert (minted.dest, minted.mint_authority, minted.amount, minted.decimals) == (
        address,
        AUTHORITY,
        7,
        8,
    )
    assert (burned.account, burned.owner, burned.amount, burned.decimals) == (
        address,
        AUTHORITY,
        3,
        8,
    )


@pytest.mark.parametrize("held", [890_880, RENT.token_account, 3_000_000])
def test_a_token_account_is_created_over_lamports_already_at_its_address(held: int) -> None:
    """Anyone may send lamports to a seed address (``create_account_with_seed``
    then fails there): the fee payer adds what the rent still lacks, if
    anything, and the address base allocates the address for the token
    program; the initialization is the usual one."""
    account = uuid4()
    *created, initialize = tx.create_token_account_instructions(
        SPLIT, account, RENT, held=held)
    address = tx.token_account_address(SPLIT.address_base, account)
    *top_up, allocate = created
    if held < RENT.token_account:
        (funding,) = top_up
        decoded = sp.decode_transfer(funding)
        assert (decoded["from_pubkey"], decoded["to_pubkey"], decoded["lamports"]) == (
            SPLIT.fee_payer, address, RENT.token_account - held)
    else:
        assert top_up == []
    assert sp.decode_allocate_with_seed(allocate) == sp.AllocateWithSeedParams(
        address=address, base=SPLIT.address_base, seed=account.hex,
        space=tx.TOKEN_ACCOUNT_LEN, owner=tx.TOKEN_PROGRAM_ID)
    assert spl.decode_initialize_account3(initialize).owner == SPLIT.owner


def test_token_accounts_and_the_mint_belong_to_the_authority() -> None:
    account = uuid4()
    _, initialize = tx.create_token_account_instructions(ROLES, account, RENT)
    decoded = spl.decode_initialize_account3(initialize)
    assert (decoded.account, decoded.mint, decoded.owner) == (
        tx.token_account_address(AUTHORITY, account),
        tx.mint_address(AUTHORITY),
        AUTHORITY,
    )
    _, mint = tx.create_mint_instructions(ROLES, RENT)
    decoded_mint = spl.decode_initialize_mint2(mint)
    assert decoded_mint.decimals == 8
    assert decoded_mint.mint_authority == AUTHORITY
    assert decoded_mint.freeze_authority == AUTHORITY


def test_memos_name_transfer_ids_and_ignore_anything_else() -> None:
    transfer_id = uuid4()
    memos = [f"deal:{transfer_id}", "deal:not-a-uuid", "hello", f"deal-genesis:{uuid4()}",
             f"deal:{uuid4()},nope"]
    assert tx.memo_transfer_ids(memos) == (transfer_id,)
    assert tx.parse_memo(b"\xff\xfe") == ()


def test_one_memo_names_several_movements_and_old_single_memos_still_read() -> None:
    """The stored contract: ``deal:<uuid>`` (one memo a movement, as first
    written) and ``deal:<uuid>,<uuid>...`` (one memo a transaction) both read."""
    first, second, old = uuid4(), uuid4(), uuid4()
    memo = tx.memo_instruction(first, second)
    assert bytes(memo.data) == f"deal:{first},{second}".encode()
    assert tx.parse_memo(bytes(memo.data)) == (first, second)
    assert tx.memo_transfer_ids([f"deal:{old}", bytes(memo.data).decode()]) == (
        old, first, second)
    assert bytes(tx.memo_instruction(old).data) == f"deal:{old}".encode()
    with pytest.raises(ValueError):
        tx.memo_instruction()


def test_creations_come_first_and_each_account_is_created_once() -> None:
    shared = uuid4()
    movements = [movement(shared, uuid4()), movement(uuid4(), shared)]
    to_create = tx.touched_account_ids(movements)
    assert len(to_create) == 3 and to_create[0] == shared
    message = tx.movements_message(ROLES, movements, to_create, RENT, Hash.default())
    programs = programs_of(message)
    assert programs[0] == COMPUTE_BUDGET_PROGRAM_ID  # the unit limit; no price configured
    assert programs[1:7] == [Pubkey.default(), tx.TOKEN_PROGRAM_ID] * 3
    assert programs[7:] == [tx.TOKEN_PROGRAM_ID, tx.TOKEN_PROGRAM_ID, tx.MEMO_PROGRAM_ID]


def test_writable_keys_follow_the_message_header() -> None:
    account = uuid4()
    instructions: list[Instruction] = [tx.movement_instruction(ROLES, movement(None, account))]
    message = tx.movements_message(ROLES, [movement(None, account)], [], RENT, Hash.default())
    assert instructions  # the message is built from the same instructions
    assert set(tx.writable_keys(message)) == {
        AUTHORITY,
        tx.mint_address(AUTHORITY),
        tx.token_account_address(AUTHORITY, account),
    }


def test_only_the_fee_payers_lack_of_sol_is_a_refusal_for_the_fee_payer() -> None:
    """The System Program's and the token program's ``Custom(1)`` read the
    same: the first is the fee payer short of rent (not the movement's
    fault), the second a token account short of DEAL (the movement's)."""
    moved = movement(uuid4(), uuid4())
    message = tx.movements_message(ROLES, [moved], tx.touched_account_ids([moved]), RENT,
                                   Hash.default())
    programs = [message.account_keys[ix.program_id_index] for ix in message.instructions]
    creating = programs.index(tx.SYSTEM_PROGRAM_ID)
    moving = len(programs) - 1 - programs[::-1].index(tx.TOKEN_PROGRAM_ID)

    def refused(wire: object) -> bool:
        return tx.refused_for_fee_payer(message, wire)

    assert refused("InsufficientFundsForFee")
    assert refused({"InsufficientFundsForRent": {"account_index": 0}})
    assert refused({"InstructionError": [creating, {"Custom": 1}]})
    assert not refused({"InstructionError": [moving, {"Custom": 1}]})
    assert not refused({"InstructionError": [creating, {"Custom": 0}]})  # already in use
    assert not refused({"InsufficientFundsForRent": {"account_index": 3}})
    assert not refused({"InstructionError": [len(programs), {"Custom": 1}]})
    assert not refused("BlockhashNotFound")


def test_the_associated_token_programs_custom_1_is_the_fee_payers_lack_of_rent() -> None:
    """Creating a wallet's account, the ATA program calls the System Program:
    the fee payer short of its rent fails the ATA instruction with the
    System Program's ``Custom(1)``; the program's own ``Custom(0)``
    (InvalidOwner: the account given to another owner) is the movement's."""
    withdrawal = replace(movement(uuid4(), None), destination_wallet=str(Pubkey.new_unique()))
    message = tx.movements_message(ROLES, [withdrawal], [], RENT, Hash.default())
    programs = [message.account_keys[ix.program_id_index] for ix in message.instructions]
    creating = programs.index(tx.ASSOCIATED_TOKEN_PROGRAM_ID)
    moving = programs.index(tx.TOKEN_PROGRAM_ID)

    assert tx.refused_for_fee_payer(message, {"InstructionError": [creating, {"Custom": 1}]})
    assert not tx.refused_for_fee_payer(message, {"InstructionError": [creating, {"Custom": 0}]})
    assert not tx.refused_for_fee_payer(message, {"InstructionError": [moving, {"Custom": 1}]})


def test_one_transaction_costs_the_fee_payer_at_most_its_fees_and_six_accounts_rent() -> None:
    """Measured: six withdrawals to new wallets (six associated token
    accounts) fit one packet; no mix of creating movements creates seven.
    Without the wallets' accounts the bound was four (found by a reviewer)."""
    assert tx.TOKEN_ACCOUNTS_CREATED_PER_TRANSACTION_MAX == 6
    assert tx.transaction_lamports_max(RENT) == 4 * 5_000 + 6 * 2_039_280
    existing = uuid4()
    withdrawals = [replace(movement(existing, None), destination_wallet=str(Pubkey.new_unique()))
                   for _ in range(7)]
    packed = tx.pack_movements(ROLES, withdrawals, [], RENT, Hash.default())
    assert packed is not None and packed.count == 6
