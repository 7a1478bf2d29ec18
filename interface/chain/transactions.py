"""Pure solders code both chain adapters share: where each ledger account's
token account lives, which instructions mirror a movement, and how many
movements one Solana transaction can carry (packed by the real serialized
size: ``pack_movements``).

Everything here is deterministic and does no I/O, so the LiteSVM adapter and
the RPC adapter build byte-identical transactions for the same inputs.

Transactions are legacy, not v0: v0 only pays off with address lookup
tables, and ours would have to be created, extended and waited on before
use (every ledger account has its own token account). Legacy is one byte
shorter without them and every RPC node, explorer and client reads it.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from uuid import UUID, uuid4

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import (
    AllocateWithSeedParams,
    CreateAccountWithSeedParams,
    TransferParams,
    allocate_with_seed,
    create_account_with_seed,
    transfer,
)
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount
from solders.transaction import Transaction
from solders.transaction_status import TransactionErrorType

from application.settlement.chain_port import ChainMovement, TokenTransfer
from interface.chain.compute_budget import COMPUTE_UNIT_LIMIT_MAX, compute_budget_instructions
from interface.chain.netting import net_movements

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")

DEAL_DECIMALS = 8
MINT_SEED = "deals-ledger:deal-mint"  # the mint lives at a seed address: no extra signer
MINT_ACCOUNT_LEN = 82
TOKEN_ACCOUNT_LEN = 165
PACKET_DATA_SIZE = 1232  # Solana's limit for one serialized transaction
MEMO_PREFIX = "deal:"
MEMO_ID_SEPARATOR = ","
U64_MAX = 2**64 - 1

_INITIALIZE_MINT2 = 20
_INITIALIZE_ACCOUNT3 = 18
_TRANSFER = 3
_TRANSFER_CHECKED = 12
_MINT_TO_CHECKED = 14
_BURN_CHECKED = 15
_FREEZE_ACCOUNT = 10
_CREATE_IDEMPOTENT = 1  # the associated token account program's CreateIdempotent


@dataclass(frozen=True)
class RentLamports:
    """Rent-exempt minimum balances, read from the chain once."""

    mint_account: int
    token_account: int


@dataclass(frozen=True)
class Authorities:
    """Who holds which power on chain (public keys only, no secrets).

    - ``fee_payer``: pays every transaction's fee and the rent of the
      accounts the ledger creates; its signature is the transaction's id.
    - ``owner``: owner of every custody token account (moves and burns).
    - ``mint_authority``: the mint's mint authority, and its freeze
      authority (the two powers go together: both issue-side controls).
    - ``address_base``: the base of the seed addresses of the mint and of
      every token account. It never changes (addresses must stay stable),
      and it signs the creation of each account at such an address.
    """

    fee_payer: Pubkey
    owner: Pubkey
    mint_authority: Pubkey
    address_base: Pubkey

    @classmethod
    def single(cls, key: Pubkey) -> Authorities:
        """One key holding every power: what every ledger had at first."""
        return cls(fee_payer=key, owner=key, mint_authority=key, address_base=key)


# --- addresses ---------------------------------------------------------------


def mint_address(address_base: Pubkey) -> Pubkey:
    return Pubkey.create_with_seed(address_base, MINT_SEED, TOKEN_PROGRAM_ID)


def _mint(roles: Authorities, mint: Pubkey | None) -> Pubkey:
    """The configured mint (DEALS_SOLANA_MINT), else the one derived from the address base."""
    return mint if mint is not None else mint_address(roles.address_base)


def mint_problem(data: bytes, authority: Pubkey) -> str | None:
    """Why an existing mint cannot be the ledger's (None: it can): DEAL has
    8 decimals and ``authority`` (the mint authority key) must be its mint
    authority."""
    try:
        state = Mint.from_bytes(data)
    except Exception:
        return "is not an SPL token mint"
    if state.decimals != DEAL_DECIMALS:
        return f"has {state.decimals} decimals; DEAL has {DEAL_DECIMALS}"
    if state.mint_authority != authority:
        return f"its mint authority is not the custody key {authority}"
    return None


def token_account_address(address_base: Pubkey, account_id: UUID) -> Pubkey:
    """One token account per ledger account, at an address anyone holding
    the address base's public key can recompute (seed = the UUID's 32 hex)."""
    return Pubkey.create_with_seed(address_base, account_id.hex, TOKEN_PROGRAM_ID)


# --- instructions ------------------------------------------------------------


def create_mint_instructions(roles: Authorities, rent: RentLamports) -> list[Instruction]:
    """The DEAL mint: 8 decimals; the mint authority mints and may freeze."""
    mint = mint_address(roles.address_base)
    create = _create_seeded_account(roles, mint, MINT_SEED, rent.mint_account, MINT_ACCOUNT_LEN)
    data = (
        struct.pack("<BB", _INITIALIZE_MINT2, DEAL_DECIMALS)
        + bytes(roles.mint_authority)
        + b"\x01"  # COption::Some(freeze authority)
        + bytes(roles.mint_authority)
    )
    return [create, Instruction(TOKEN_PROGRAM_ID, data, [_writable(mint)])]


def create_token_account_instructions(
    roles: Authorities, account_id: UUID, rent: RentLamports, mint: Pubkey | None = None,
    *, held: int = 0,
) -> list[Instruction]:
    """Create and initialize ``account_id``'s token account at its seed
    address. ``held``: lamports already at that address (anyone may send
    them; ``create_account_with_seed`` would fail there): then the fee payer
    adds only what the rent-exempt minimum still lacks and the address base
    allocates it for the token program, the held lamports part of the rent."""
    address = token_account_address(roles.address_base, account_id)
    if held:
        create = _fund_and_allocate_seeded(roles, address, account_id.hex,
                                           rent.token_account - held, TOKEN_ACCOUNT_LEN)
    else:
        create = [_create_seeded_account(
            roles, address, account_id.hex, rent.token_account, TOKEN_ACCOUNT_LEN)]
    data = struct.pack("<B", _INITIALIZE_ACCOUNT3) + bytes(roles.owner)
    initialize = Instruction(
        TOKEN_PROGRAM_ID, data, [_writable(address), _readonly(_mint(roles, mint))]
    )
    return [*create, initialize]


def associated_token_address(wallet: str, mint: Pubkey) -> Pubkey:
    """Where a wallet holds DEAL by convention: its associated token account."""
    return get_associated_token_address(Pubkey.from_string(wallet), mint)


def create_associated_account_instruction(
    fee_payer: Pubkey, wallet: str, mint: Pubkey
) -> Instruction:
    """Create ``wallet``'s associated token account, paid by the fee payer;
    a no-op when it exists (CreateIdempotent), so a withdrawal always
    carries it and never fails for an account created meanwhile."""
    owner = Pubkey.from_string(wallet)
    accounts = [
        AccountMeta(fee_payer, is_signer=True, is_writable=True),
        _writable(get_associated_token_address(owner, mint)), _readonly(owner), _readonly(mint),
        _readonly(SYSTEM_PROGRAM_ID), _readonly(TOKEN_PROGRAM_ID),
    ]
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([_CREATE_IDEMPOTENT]), accounts)


def movement_instructions(
    roles: Authorities, movement: ChainMovement, mint: Pubkey | None = None
) -> list[Instruction]:
    """A movement's instructions: a withdrawal first makes sure its
    wallet's associated token account exists, unless the ledger paid for it
    once already (``ChainMovement.creates_wallet_account``)."""
    moved = movement_instruction(roles, movement, mint)
    if movement.destination_wallet is None or not movement.creates_wallet_account:
        return [moved]
    create = create_associated_account_instruction(
        roles.fee_payer, movement.destination_wallet, _mint(roles, mint))
    return [create, moved]


def movement_instruction(
    roles: Authorities, movement: ChainMovement, mint: Pubkey | None = None
) -> Instruction:
    """The token instruction that mirrors one movement (its id is in the
    transaction's memo, ``memo_instruction``)."""
    mint = _mint(roles, mint)
    received_by = _withdrawn_to(movement, mint)
    if received_by is not None:
        source = token_account_address(roles.address_base, _required(movement.source))
        return transfer_checked_instruction(roles.owner, source, received_by,
                                            movement.amount, mint)
    if movement.source is None:
        minted_to = token_account_address(roles.address_base, _required(movement.destination))
        return mint_to_instruction(roles.mint_authority, minted_to, movement.amount, mint)
    source = token_account_address(roles.address_base, movement.source)
    if movement.destination is None:
        return burn_instruction(roles.owner, source, movement.amount, mint)
    destination = token_account_address(roles.address_base, movement.destination)
    return transfer_checked_instruction(roles.owner, source, destination, movement.amount, mint)


def _withdrawn_to(movement: ChainMovement, mint: Pubkey) -> Pubkey | None:
    """The token account a withdrawal pays into: a return's own (the
    deposit's source, as it is) or the wallet's associated one; None for
    any other movement."""
    if movement.destination_token_account is not None:
        return Pubkey.from_string(movement.destination_token_account)
    if movement.destination_wallet is not None:
        return associated_token_address(movement.destination_wallet, mint)
    return None


def transfer_checked_instruction(
    owner: Pubkey, source: Pubkey, destination: Pubkey, amount: int, mint: Pubkey
) -> Instruction:
    accounts = [_writable(source), _readonly(mint), _writable(destination), _signer(owner)]
    return Instruction(TOKEN_PROGRAM_ID, _checked_data(_TRANSFER_CHECKED, amount), accounts)


def freeze_account_instruction(
    freeze_authority: Pubkey, token_account: Pubkey, mint: Pubkey
) -> Instruction:
    accounts = [_writable(token_account), _readonly(mint), _signer(freeze_authority)]
    return Instruction(TOKEN_PROGRAM_ID, bytes([_FREEZE_ACCOUNT]), accounts)


def memo_instruction(*transfer_ids: UUID) -> Instruction:
    """One memo naming every movement of the transaction, in the order of
    their token instructions: ``deal:<uuid>[,<uuid>...]`` (one id is the
    form written before several shared a memo, so old and new read alike).
    No signer accounts: the transaction's signature already proves who
    wrote it, and signer accounts would cost 32 bytes each."""
    if not transfer_ids:
        raise ValueError("a_memo_needs_a_transfer_id")
    text = MEMO_PREFIX + MEMO_ID_SEPARATOR.join(map(str, transfer_ids))
    return Instruction(MEMO_PROGRAM_ID, text.encode(), [])


def mint_to_instruction(
    mint_authority: Pubkey, destination: Pubkey, amount: int, mint: Pubkey
) -> Instruction:
    accounts = [_writable(mint), _writable(destination), _signer(mint_authority)]
    return Instruction(TOKEN_PROGRAM_ID, _checked_data(_MINT_TO_CHECKED, amount), accounts)


def burn_instruction(owner: Pubkey, source: Pubkey, amount: int, mint: Pubkey) -> Instruction:
    accounts = [_writable(source), _writable(mint), _signer(owner)]
    return Instruction(TOKEN_PROGRAM_ID, _checked_data(_BURN_CHECKED, amount), accounts)


def _required(account_id: UUID | None) -> UUID:
    if account_id is None:
        raise ValueError("movement_needs_a_source_or_a_destination")
    return account_id


def _checked_data(tag: int, amount: int) -> bytes:
    return struct.pack("<BQB", tag, amount, DEAL_DECIMALS)


def _create_seeded_account(
    roles: Authorities, address: Pubkey, seed: str, lamports: int, space: int
) -> Instruction:
    """The fee payer funds it; the address base signs for its seed address."""
    params = CreateAccountWithSeedParams(
        from_pubkey=roles.fee_payer,
        to_pubkey=address,
        base=roles.address_base,
        seed=seed,
        lamports=lamports,
        space=space,
        owner=TOKEN_PROGRAM_ID,
    )
    return create_account_with_seed(params)


def _fund_and_allocate_seeded(
    roles: Authorities, address: Pubkey, seed: str, lacking: int, space: int
) -> list[Instruction]:
    """An address already holding lamports: the fee payer tops them up to
    the rent (nothing when ``lacking`` <= 0), then the address base signs
    for the seed address's space and owner (the token program)."""
    top_up = [transfer(TransferParams(from_pubkey=roles.fee_payer, to_pubkey=address,
                                      lamports=lacking))] if lacking > 0 else []
    return [*top_up, allocate_with_seed(AllocateWithSeedParams(
        address=address, base=roles.address_base, seed=seed, space=space,
        owner=TOKEN_PROGRAM_ID))]


def _writable(pubkey: Pubkey) -> AccountMeta:
    return AccountMeta(pubkey, is_signer=False, is_writable=True)


def _readonly(pubkey: Pubkey) -> AccountMeta:
    return AccountMeta(pubkey, is_signer=False, is_writable=False)


def _signer(pubkey: Pubkey) -> AccountMeta:
    return AccountMeta(pubkey, is_signer=True, is_writable=False)


# --- movements and packing ---------------------------------------------------


def validate_movements(movements: Sequence[ChainMovement], limit: int) -> None:
    """Refuse what the chain would refuse, or what we cannot pack, before
    anything is signed. Errors are named after the rule they protect."""
    if not movements:
        raise ValueError("movements_must_not_be_empty")
    if len(movements) > limit:
        raise ValueError(f"movements_must_fit_one_transaction: {len(movements)} > {limit}")
    if len({movement.transfer_id for movement in movements}) != len(movements):
        raise ValueError("transfer_ids_must_be_unique_in_a_transaction")
    for movement in movements:
        validate_movement(movement)


def validate_movement(movement: ChainMovement) -> None:
    if type(movement.amount) is not int:
        raise ValueError("amount_must_be_int_base_units")
    if not 0 < movement.amount <= U64_MAX:
        raise ValueError("amount_must_be_positive_and_fit_u64")
    if movement.source is None and movement.destination is None:
        raise ValueError("movement_needs_a_source_or_a_destination")
    outside = [address for address in (movement.destination_wallet,
                                        movement.destination_token_account) if address is not None]
    if outside and (movement.source is None or movement.destination is not None
                    or len(outside) > 1):
        raise ValueError("a_withdrawal_goes_from_a_token_account_to_a_wallet_only")
    for address in outside:
        try:
            Pubkey.from_string(address)
        except ValueError:
            raise ValueError("destination_wallet_must_be_a_base58_address") from None
    if movement.source == movement.destination:
        raise ValueError("accounts_must_be_different")


def touched_account_ids(movements: Iterable[ChainMovement]) -> list[UUID]:
    """Every ledger account the movements touch, in first-seen order."""
    seen: dict[UUID, None] = {}
    for movement in movements:
        for account_id in (movement.source, movement.destination):
            if account_id is not None:
                seen.setdefault(account_id, None)
    return list(seen)


def movements_message(
    roles: Authorities,
    movements: Sequence[ChainMovement],
    accounts_to_create: Sequence[UUID],
    rent: RentLamports,
    blockhash: Hash,
    mint: Pubkey | None = None,
    *,
    net: bool = False,
    units: int = COMPUTE_UNIT_LIMIT_MAX,
    price_micro_lamports: int = 0,
    held: Mapping[UUID, int] | None = None,
) -> Message:
    """The compute budget (``units`` asked for, the priority price if any),
    then creations (a movement may need them; ``held``: lamports already at
    an address to create, see ``create_token_account_instructions``), then
    each movement's token instruction (``net``: one per group of transfers
    between the same two token accounts, ``interface.chain.netting``), then
    one memo naming them all in ledger order. The fee payer pays the fee."""
    instructions = compute_budget_instructions(units, price_micro_lamports)
    for account_id in accounts_to_create:
        instructions += create_token_account_instructions(
            roles, account_id, rent, mint, held=(held or {}).get(account_id, 0))
    legs = net_movements(movements) if net else movements
    for movement in legs:
        instructions += movement_instructions(roles, movement, mint)
    instructions.append(memo_instruction(*(movement.transfer_id for movement in movements)))
    return Message.new_with_blockhash(instructions, roles.fee_payer, blockhash)


def serialized_size(message: Message) -> int:
    """Size on the wire once signed (signature slots are fixed-size)."""
    return len(bytes(Transaction.new_unsigned(message)))


def require_fits_packet(message: Message) -> None:
    size = serialized_size(message)
    if size > PACKET_DATA_SIZE:
        raise ValueError(f"transaction_must_fit_packet: {size} > {PACKET_DATA_SIZE} bytes")


@dataclass(frozen=True)
class Packed:
    """The first ``count`` movements offered, in one message that fits
    (``held``: as for ``movements_message``, to build it again)."""

    message: Message
    accounts_to_create: list[UUID]
    count: int
    held: Mapping[UUID, int] | None = None


def pack_movements(
    roles: Authorities,
    movements: Sequence[ChainMovement],
    missing_accounts: Iterable[UUID],
    rent: RentLamports,
    blockhash: Hash,
    mint: Pubkey | None = None,
    *,
    net: bool = False,
    price_micro_lamports: int = 0,
    held: Mapping[UUID, int] | None = None,
) -> Packed | None:
    """The message for the longest prefix of ``movements`` whose signed
    transaction fits PACKET_DATA_SIZE, measured on the real serialized
    bytes (a movement between accounts already on chain and already named
    costs ~55 bytes, one that creates two token accounts ~290), and the
    accounts it creates (those of ``missing_accounts`` the prefix touches).
    The message asks for COMPUTE_UNIT_LIMIT_MAX units: the adapter measures
    the real need and signs it again with that limit, a u32 like this one,
    so the size does not change. None when not even the first fits (never
    for a single movement: see ``WORST_CASE_MOVEMENTS_PER_TRANSACTION``).
    ``held``: as for ``movements_message``."""
    missing = set(missing_accounts)
    fitting: Packed | None = None
    for count in range(1, len(movements) + 1):
        prefix = movements[:count]
        to_create = [account for account in touched_account_ids(prefix) if account in missing]
        message = movements_message(roles, prefix, to_create, rent, blockhash, mint, net=net,
                                    price_micro_lamports=price_micro_lamports, held=held)
        if serialized_size(message) > PACKET_DATA_SIZE:
            break
        fitting = Packed(message, to_create, count, held)
    return fitting


def measure_movements_per_transaction(*, best_case: bool, net: bool = False) -> int:
    """How many movements fit one transaction. Worst case: every one a
    transfer between two token accounts that do not exist yet, so each
    brings two creations, each over lamports a stranger sent to its address
    (a top-up and an allocation: 8 bytes more than a plain creation). Best
    case: every one between the same two existing accounts (``net``:
    netted into one transfer, so only the memo grows). Amounts, rents, the
    unit limit and the priority price are fixed-width, so any values
    measure the same size; a price is included, so the bounds hold whether
    one is configured or not. The worst case has every power with a key of
    its own (more signatures); the best case one key for all."""
    roles = Authorities.single(Pubkey.new_unique()) if best_case else Authorities(
        *(Pubkey.new_unique() for _ in range(4)))
    rent = RentLamports(mint_account=U64_MAX, token_account=U64_MAX)
    source, destination = uuid4(), uuid4()
    count = 0
    while True:
        movements = [
            ChainMovement(uuid4(), source, destination, U64_MAX) if best_case
            else _worst_case_movement()
            for _ in range(count + 1)
        ]
        creations = [] if best_case else touched_account_ids(movements)
        amount = 1 if net else U64_MAX  # netted: the sum must stay a u64
        movements = [replace(movement, amount=amount) for movement in movements]
        message = movements_message(roles, movements, creations, rent, Hash.default(), net=net,
                                    price_micro_lamports=1,
                                    held=dict.fromkeys(creations, 1))
        if serialized_size(message) > PACKET_DATA_SIZE:
            return count
        count += 1


def _worst_case_movement() -> ChainMovement:
    return ChainMovement(uuid4(), uuid4(), uuid4(), U64_MAX)


WORST_CASE_MOVEMENTS_PER_TRANSACTION = measure_movements_per_transaction(best_case=False)
"""Always fit, whatever the chain holds: at least one, so packing never stalls."""
MOVEMENTS_PER_TRANSACTION_MAX = measure_movements_per_transaction(best_case=True)
"""The most that can ever fit: the bound on the movements offered to one
transaction, which carries as many of them as its real size allows."""
NETTED_MOVEMENTS_PER_TRANSACTION_MAX = measure_movements_per_transaction(best_case=True, net=True)
"""The most that can ever fit when netting: one transfer and a memo naming
them all (the memo's 37 bytes an id are then the bound)."""

LAMPORTS_PER_SIGNATURE = 5_000
"""Solana's base fee per signature (fixed on every cluster since the fee
governor was retired)."""
SIGNATURES_PER_TRANSACTION_MAX = 4
"""Every power a key of its own (fee payer, owner, mint authority, address
base) all signing one transaction; an anchor has two."""


def measure_token_accounts_created_max() -> int:
    """The most token accounts one transaction can create, a withdrawal's
    wallet's associated token account included: every mix of movements that
    create accounts (a mint to a new account, a transfer from an existing
    one to a new one, a transfer between two new ones, a withdrawal from an
    existing or a new account to a new wallet) is tried, one length after
    another until none fits, with one key for every power (the fewest
    signatures leave the most room). Mixes, not orders: a message's size
    does not depend on the order of its instructions."""
    roles = Authorities.single(Pubkey.new_unique())
    rent = RentLamports(mint_account=U64_MAX, token_account=U64_MAX)
    existing = uuid4()
    most = 0
    for length in itertools.count(1):
        fitting = False
        for mix in itertools.combinations_with_replacement(_CREATING_KINDS, length):
            movements = [make(existing) for make in mix]
            creations = [account for account in touched_account_ids(movements)
                         if account != existing]
            message = movements_message(roles, movements, creations, rent, Hash.default())
            if serialized_size(message) <= PACKET_DATA_SIZE:
                fitting, most = True, max(most, len(creations) + _wallet_creations(movements))
        if not fitting:
            break
    return most


def _new_wallet() -> str:
    return str(Pubkey.new_unique())


_CREATING_KINDS: tuple[Callable[[UUID], ChainMovement], ...] = (
    lambda existing: ChainMovement(uuid4(), None, uuid4(), U64_MAX),
    lambda existing: ChainMovement(uuid4(), existing, uuid4(), U64_MAX),
    lambda existing: _worst_case_movement(),
    lambda existing: ChainMovement(uuid4(), existing, None, U64_MAX, _new_wallet()),
    lambda existing: ChainMovement(uuid4(), uuid4(), None, U64_MAX, _new_wallet()),
)
"""Every movement that creates accounts, given an account that exists."""


def _wallet_creations(movements: Sequence[ChainMovement]) -> int:
    """Associated token accounts the movements create (one per wallet)."""
    return len({movement.destination_wallet for movement in movements
                if movement.destination_wallet is not None and movement.creates_wallet_account})


TOKEN_ACCOUNTS_CREATED_PER_TRANSACTION_MAX = measure_token_accounts_created_max()
"""6 today: six withdrawals to new wallets, or four and one from a new
account (it counted 4 before withdrawals' associated token accounts were
counted, so a fee payer holding the bound could not pay such a transaction)."""


def transaction_lamports_max(rent: RentLamports) -> int:
    """The most one transaction can take from the fee payer: every signature's
    fee and the rent of the most token accounts one transaction creates
    (priority fees, when added, belong here too)."""
    return (SIGNATURES_PER_TRANSACTION_MAX * LAMPORTS_PER_SIGNATURE
            + TOKEN_ACCOUNTS_CREATED_PER_TRANSACTION_MAX * rent.token_account)


SYSTEM_ERROR_RESULT_WITH_NEGATIVE_LAMPORTS = 1


def refused_for_fee_payer(message: Message, error_wire: object) -> bool:
    """The refusal is the fee payer's lack of SOL, not the movements': it
    cannot pay the fee, would be left below its rent-exempt minimum
    (account 0 is the fee payer), or a System Program instruction failed
    with ``Custom(1)``, ResultWithNegativeLamports (ours only create
    accounts, funded by the fee payer; the same code from the token program
    is a token account's insufficient DEAL, the movement's own fault). The
    associated token account program creates a wallet's account through
    the System Program, whose error surfaces as the ATA instruction's own:
    its ``Custom(1)`` is the fee payer short of that rent too (the program's
    only own error is ``Custom(0)``, InvalidOwner, a movement's fault)."""
    if error_wire == "InsufficientFundsForFee":
        return True
    if not isinstance(error_wire, dict):
        return False
    rent = error_wire.get("InsufficientFundsForRent")
    if isinstance(rent, dict):
        return rent.get("account_index") == 0
    failed = error_wire.get("InstructionError")
    if not isinstance(failed, list) or len(failed) != 2 or not isinstance(failed[0], int):
        return False
    if failed[1] != {"Custom": SYSTEM_ERROR_RESULT_WITH_NEGATIVE_LAMPORTS}:
        return False
    instructions = message.instructions
    if not 0 <= failed[0] < len(instructions):
        return False
    program = message.account_keys[instructions[failed[0]].program_id_index]
    return program in (SYSTEM_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID)


# --- reading what landed -----------------------------------------------------


def signers(message: Message) -> tuple[str, ...]:
    """The keys that signed ``message`` (the fee payer first), base58."""
    return tuple(str(key) for key in message.account_keys[:message.header.num_required_signatures])


def memo_texts(message: Message) -> tuple[str, ...]:
    """The text of every Memo instruction, in instruction order."""
    keys = message.account_keys
    return tuple(
        bytes(instruction.data).decode("utf-8", errors="replace")
        for instruction in message.instructions
        if keys[instruction.program_id_index] == MEMO_PROGRAM_ID
    )


SET_AUTHORITY = 6
"""The SPL Token program's SetAuthority instruction (its first data byte)."""


def authority_changes(message: Message) -> tuple[str, ...]:
    """The accounts (base58) whose authority the transaction changes, when
    SPL Token SetAuthority instructions are all it holds (what ``custody
    rotate`` sends); empty for any other transaction. Landed, such a
    transaction was signed by each account's authority of the time."""
    keys, found = message.account_keys, []
    for instruction in message.instructions:
        data = bytes(instruction.data)
        if (keys[instruction.program_id_index] != TOKEN_PROGRAM_ID or not data
                or data[0] != SET_AUTHORITY or not instruction.accounts):
            return ()
        found.append(str(keys[instruction.accounts[0]]))
    return tuple(found)


def memo_transfer_ids(memos: Iterable[str]) -> tuple[UUID, ...]:
    """Transfer ids named by ``deal:`` memos, in memo then id order: one
    memo per movement (as first written) or one per transaction naming
    several. A transaction made behind the service's back has none."""
    return tuple(transfer_id for memo in memos for transfer_id in parse_memo(memo.encode()))


@dataclass(frozen=True)
class InnerInstruction:
    """One instruction a program invoked (a CPI) while top-level instruction
    ``outer`` ran: indexes into the message's account keys, as LiteSVM's
    metadata and JSON-RPC's ``meta.innerInstructions`` both give them."""

    outer: int
    program_id_index: int
    accounts: tuple[int, ...]
    data: bytes


def token_transfers(
    message: Message, accounts: Mapping[str, tuple[str, str]],
    inner: Sequence[InnerInstruction] = (),
) -> tuple[TokenTransfer, ...]:
    """Every SPL Token ``transfer`` and ``transfer_checked`` of ``message``
    and of its inner instructions (those a program made by CPI), each read
    where it ran: top-level instruction ``i``, then the ones invoked inside
    it. ``accounts`` maps token account addresses to (owner, mint), from
    the transaction's token balances as nodes report them: a plain
    ``transfer`` names no mint, it moves the destination's. Malformed
    instructions (short data, missing accounts) are not transfers: they
    could not have executed."""
    keys = [str(key) for key in message.account_keys]
    inside: dict[int, list[InnerInstruction]] = {}
    for instruction in inner:
        inside.setdefault(instruction.outer, []).append(instruction)
    found: list[TokenTransfer] = []
    for index, top in enumerate(message.instructions):
        steps: list[tuple[int | None, int, tuple[int, ...], bytes]] = [
            (None, top.program_id_index, tuple(top.accounts), bytes(top.data))]
        steps += [(number, step.program_id_index, step.accounts, step.data)
                  for number, step in enumerate(inside.get(index, ()))]
        for number, program, named, data in steps:
            if keys[program] == str(TOKEN_PROGRAM_ID):
                moved = _transfer(keys, named, data, accounts, index, number)
                if moved is not None:
                    found.append(moved)
    return tuple(found)


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58_bytes(text: str) -> bytes:
    """Decode base58 (JSON-RPC's encoding of an inner instruction's data):
    each leading ``1`` is a zero byte. ValueError on any other character."""
    number = 0
    for character in text:
        digit = _BASE58.find(character)
        if digit < 0:
            raise ValueError(f"{character!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return bytes(len(text) - len(text.lstrip("1"))) + body


def _transfer(
    keys: Sequence[str], named: Sequence[int], data: bytes,
    accounts: Mapping[str, tuple[str, str]], index: int, inner: int | None,
) -> TokenTransfer | None:
    """The transfer one token-program instruction made, if it is one."""
    mint: str | None
    if len(data) == 10 and data[0] == _TRANSFER_CHECKED and len(named) >= 4:
        source, mint, destination = (keys[position] for position in named[:3])
    elif len(data) == 9 and data[0] == _TRANSFER and len(named) >= 3:
        source, destination = keys[named[0]], keys[named[1]]
        mint = accounts.get(destination, ("", ""))[1] or None
    else:
        return None
    (amount,) = struct.unpack_from("<Q", data, 1)
    owner = accounts.get(source, (None, None))[0]
    return TokenTransfer(source=source, source_owner=owner, destination=destination, mint=mint,
                         amount=amount, instruction=index, inner=inner,
                         checked=data[0] == _TRANSFER_CHECKED)


def writable_keys(message: Message) -> list[Pubkey]:
    """The accounts a legacy message may change, from its header."""
    header = message.header
    keys = message.account_keys
    signed = header.num_required_signatures
    signed_writable = signed - header.num_readonly_signed_accounts
    unsigned_writable_end = len(keys) - header.num_readonly_unsigned_accounts
    return [
        key
        for index, key in enumerate(keys)
        if index < signed_writable or signed <= index < unsigned_writable_end
    ]


def parse_memo(data: bytes) -> tuple[UUID, ...]:
    """The ids of a ``deal:<uuid>[,<uuid>...]`` memo; none for any other
    text, or when any id is malformed (the memo is then not the ledger's)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ()
    if not text.startswith(MEMO_PREFIX):
        return ()
    try:
        return tuple(UUID(part) for part in
                     text.removeprefix(MEMO_PREFIX).split(MEMO_ID_SEPARATOR))
    except ValueError:
        return ()


def decode_token_account(data: bytes) -> TokenAccount:
    return TokenAccount.from_bytes(data)


def decode_mint(data: bytes) -> Mint:
    return Mint.from_bytes(data)


def token_account_amount(data: bytes) -> int:
    return int(TokenAccount.from_bytes(data).amount)


def mint_supply(data: bytes) -> int:
    return int(Mint.from_bytes(data).supply)


def is_token_account(owner: Pubkey, data: bytes) -> bool:
    return owner == TOKEN_PROGRAM_ID and len(data) == TOKEN_ACCOUNT_LEN


def error_to_wire(error: TransactionErrorType) -> object:
    """A transaction error in the JSON form RPC nodes send
    (``{"InstructionError":[0,{"Custom":17}]}``). solders' own serializer
    knows every variant; the error types' ``to_json`` drops the tags."""
    wrapper = RpcSimulateTransactionResult(
        err=error, logs=None, accounts=None, units_consumed=None, return_data=None
    )
    return json.loads(wrapper.to_json())["err"]


def error_text(error: TransactionErrorType | None) -> str | None:
    """The one text form both adapters give an on-chain error, so the
    settlement process sees the same string on either chain: the bare name
    for a fieldless error (``BlockhashNotFound``), compact JSON otherwise."""
    if error is None:
        return None
    return wire_error_text(error_to_wire(error))


def wire_error_text(wire: object) -> str:
    if isinstance(wire, str):
        return wire
    return json.dumps(wire, separators=(",", ":"))
