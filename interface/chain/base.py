"""What both chain adapters do the same way: genesis, and signing movements
with the token accounts they need created on first need.

Each adapter supplies a few primitives (does an account exist, a blockhash,
the mint's supply, rent) and the port's query methods; this base turns them
into ``ensure_genesis`` and ``sign_movements`` so the two adapters cannot
drift apart in what they put on chain.

Creating a token account twice fails the whole transaction, and a failed
transaction means a ledger reversal. So the base remembers which signed
submissions create which accounts: while such a submission may still land,
a new movement on that account is refused with a retryable
``TokenAccountCreationPendingError`` rather than signed into a transaction
that could only fail (or, without the creation, that could fail if the first
one were lost).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application.settlement.chain_port import (
    ChainError,
    ChainMovement,
    ChainRejectedError,
    ChainTransaction,
    ChainUnavailableError,
    CustodyAccountUnsafeError,
    FeePayerFunds,
    FeePayerRefusedError,
    SignatureStatus,
    SignedSubmission,
)
from interface.chain import transactions as tx
from interface.chain.compute_budget import (
    COMPUTE_UNIT_LIMIT_MAX,
    PriorityFees,
    priority_fee_lamports,
    units_with_margin,
)
from interface.chain.custody import CustodyKey, CustodyKeys, as_custody_keys
from interface.chain.custody_accounts import custody_account_problem, holds_only_lamports

GENESIS_MEMO_PREFIX = "deal-genesis:"
SIGNATURE_STATUSES_MAX = 256  # getSignatureStatuses' own cap
GENESIS_POLL_INTERVAL_S = 0.4  # about one slot on a real cluster
GENESIS_POLLS_MAX = 600


class TokenAccountCreationPendingError(ChainUnavailableError):
    """A movement touches a token account that an earlier signed submission
    creates, and that submission may still land: retry once it has landed
    or its blockhash has expired."""


class GenesisError(ChainError):
    """Genesis could not be completed (its transaction failed on chain or
    never landed in time); nothing was minted twice."""


@dataclass(frozen=True)
class Simulation:
    """What a simulation said: ``units`` consumed when it would land, else
    ``error_wire``, the chain's error in its wire form (``tx.error_to_wire``)."""

    units: int | None
    error_wire: object = None


@dataclass(frozen=True)
class _Attempt:
    """A packed message and what its simulation said."""

    packed: tx.Packed
    simulation: Simulation


@dataclass(frozen=True)
class _CreationInFlight:
    signature: str
    last_valid_block_height: int


class SeededTokenChain(abc.ABC):
    """The DEAL mint and its token accounts at seed addresses of the
    custody keys' address base, on some Solana. Subclasses implement the
    port's queries and the primitives below. Everything is signed through
    ``CustodyKeys`` (one key alone stands for every power)."""

    def __init__(self, custody: CustodyKey | CustodyKeys, mint: Pubkey | None = None,
                 fees: PriorityFees | None = None) -> None:
        """``mint``: an existing mint to use (DEALS_SOLANA_MINT) instead of
        the one derived from the address base, which is created when missing.
        ``fees``: the priority price and its cap (default: no price)."""
        self._keys = as_custody_keys(custody)
        self._fees = fees or PriorityFees()
        self._mint_given = mint is not None
        self._mint = mint if mint is not None else tx.mint_address(self._keys.address_base)
        self._rent: tx.RentLamports | None = None
        self._fee_payer_reserve: int | None = None
        self._known_accounts: set[Pubkey] = set()
        self._creations_in_flight: dict[Pubkey, _CreationInFlight] = {}

    # --- primitives -----------------------------------------------------------

    @abc.abstractmethod
    async def _account(self, address: Pubkey) -> tuple[Pubkey, bytes] | None:
        """The account's owning program and data; None when it does not exist."""

    async def _account_exists(self, address: Pubkey) -> bool:
        return await self._account(address) is not None

    async def _account_data(self, address: Pubkey) -> bytes | None:
        account = await self._account(address)
        return None if account is None else account[1]

    @abc.abstractmethod
    async def _latest_blockhash(self) -> tuple[Hash, int]: ...

    @abc.abstractmethod
    async def _rent_lamports(self) -> tx.RentLamports: ...

    @abc.abstractmethod
    async def _simulate(self, transaction: Transaction) -> Simulation:
        """Simulate the transaction on this chain's current state: the
        compute units it consumes, or why it would fail."""

    @abc.abstractmethod
    async def _lamports(self, address: Pubkey) -> int:
        """The SOL balance of ``address`` (0 when it does not exist)."""

    async def lamports(self, address: Pubkey) -> int:
        """The SOL balance of ``address`` (0 when it does not exist), for
        operator tools (a fee-payer rotation's top-up)."""
        return await self._lamports(address)

    @abc.abstractmethod
    async def _rent_exempt_lamports(self, data_len: int) -> int: ...

    # --- the port's queries, per adapter -----------------------------------------

    @abc.abstractmethod
    async def send(self, submission: SignedSubmission) -> None: ...

    @abc.abstractmethod
    async def signature_statuses(
        self, signatures: Sequence[str]
    ) -> dict[str, SignatureStatus | None]: ...

    @abc.abstractmethod
    async def block_height(self) -> int: ...

    @abc.abstractmethod
    async def token_balance(self, account_id: UUID) -> int | None: ...

    @abc.abstractmethod
    async def signatures_for_account(
        self, account_id: UUID, *, before: str | None = None, limit: int = 1000
    ) -> list[str]: ...

    @abc.abstractmethod
    async def transaction(self, signature: str) -> ChainTransaction | None: ...

    @abc.abstractmethod
    async def anchor_signatures(
        self, *, before: str | None = None, limit: int = 1000
    ) -> list[str]: ...

    @abc.abstractmethod
    async def fee_payer_signatures(
        self, *, payer: str | None = None, before: str | None = None, limit: int = 1000
    ) -> list[str]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- shared port methods ---------------------------------------------------

    @property
    def mint_address(self) -> str:
        return str(self._mint)

    @property
    def movements_per_transaction_max(self) -> int:
        return tx.MOVEMENTS_PER_TRANSACTION_MAX

    @property
    def netted_movements_per_transaction_max(self) -> int:
        return tx.NETTED_MOVEMENTS_PER_TRANSACTION_MAX

    def token_account_address(self, account_id: UUID) -> str:
        return str(tx.token_account_address(self._keys.address_base, account_id))

    def wallet_token_account_address(self, wallet: str) -> str:
        return str(tx.associated_token_address(wallet, self._mint))

    async def mint_supply(self) -> int:
        data = await self._account_data(self._mint)
        return 0 if data is None else tx.mint_supply(data)

    @property
    def fee_payer_address(self) -> str:
        return str(self._keys.fee_payer)

    def fee_payer_of(self, transaction: bytes) -> str:
        return str(Transaction.from_bytes(transaction).message.account_keys[0])

    @property
    def token_account_owner(self) -> str:
        return str(self._keys.owner)

    async def fee_payer_funds(self) -> FeePayerFunds:
        """The fee payer's lamports, and what it must keep (its rent-exempt
        minimum, as a data-less system account) and may spend on one
        transaction at most, its priority fee at the largest unit limit
        included (read once, like rent)."""
        rent = await self._cached_rent()
        if self._fee_payer_reserve is None:
            self._fee_payer_reserve = await self._rent_exempt_lamports(0)
        return FeePayerFunds(
            address=str(self._keys.fee_payer),
            lamports=await self._lamports(self._keys.fee_payer),
            reserve_lamports=self._fee_payer_reserve,
            transaction_lamports_max=tx.transaction_lamports_max(rent) + priority_fee_lamports(
                COMPUTE_UNIT_LIMIT_MAX, self._fees.price_micro_lamports),
        )

    async def ensure_genesis(self, treasury_id: UUID, initial_supply: int) -> None:
        """Create the mint and the treasury's token account if missing and
        mint the initial supply if the mint has never minted. Safe to call on
        every start: a second call finds everything done and sends nothing."""
        if type(initial_supply) is not int or not 0 < initial_supply <= tx.U64_MAX:
            raise ValueError("initial_supply_must_be_positive_int_base_units")
        instructions = await self._genesis_instructions(treasury_id, initial_supply)
        if instructions:
            await self.sign_and_land(instructions)
        await self._require_powers(treasury_id)

    @property
    def keys(self) -> CustodyKeys:
        """Which key holds which power (public keys; operator tools sign through it)."""
        return self._keys

    @property
    def mint(self) -> Pubkey:
        return self._mint

    async def account_data(self, address: Pubkey) -> bytes | None:
        """An account's data, None when there is none (operator tools)."""
        return await self._account_data(address)

    async def sign_and_land(self, instructions: list[Instruction],
                            co_signer: CustodyKey | None = None) -> str:
        """Sign ``instructions`` in one transaction (paid by the fee payer;
        ``co_signer``: a key no role holds signs too, a rotation's new key),
        send it and wait (bounded) until it landed; its signature. A failure
        on chain or an expiry is a ``GenesisError`` naming it."""
        submission = await self._sign(instructions, co_signer)
        await self.send(submission)
        await self._await_landing(submission)
        return submission.signature

    async def sign_movements(
        self, movements: Sequence[ChainMovement], *, whole: bool = False, net: bool = False
    ) -> SignedSubmission:
        """Sign (not send) one transaction carrying the longest prefix of
        ``movements`` that fits a packet, with the token accounts it needs
        created; the submission's ``transfer_ids`` say which (at least the
        first). ``whole``: all of them or a ValueError, nothing signed.
        ``net``: transfers between the same two token accounts as one
        transfer of their sum (``interface.chain.netting``). It asks for
        the compute units a simulation of it measured and pays the
        configured priority price."""
        limit = (self.netted_movements_per_transaction_max if net
                 else self.movements_per_transaction_max)
        tx.validate_movements(movements, limit)
        missing = await self._accounts_to_create(tx.touched_account_ids(movements))
        rent = await self._cached_rent()
        blockhash, last_valid = await self._latest_blockhash()
        packed = tx.pack_movements(self._keys.authorities, movements, missing, rent, blockhash,
                                   self._mint, net=net,
                                   price_micro_lamports=self._fees.price_micro_lamports,
                                   held=missing)
        if packed is None or (whole and packed.count < len(movements)):
            count = 0 if packed is None else packed.count
            raise ValueError(f"movements_must_fit_one_transaction: {count} of "
                             f"{len(movements)} fit")
        attempt = await self._simulated(packed, blockhash)
        if not whole and self._refused_movement(attempt):
            attempt = await self._isolated(attempt, movements, missing, rent, blockhash, net)
        packed = attempt.packed
        to_create = packed.accounts_to_create
        message = self._measured(attempt, movements[:packed.count], rent, blockhash, net)
        transfer_ids = tuple(movement.transfer_id for movement in movements[:packed.count])
        submission = self._signed(message, blockhash, last_valid, transfer_ids)
        for account_id in to_create:
            address = tx.token_account_address(self._keys.address_base, account_id)
            self._creations_in_flight[address] = _CreationInFlight(submission.signature, last_valid)
        return submission

    @property
    def anchor_signer(self) -> str:
        return str(self._keys.anchor)

    async def sign_anchor(self, memo: str) -> SignedSubmission:
        """The memo names the anchor signer as its signer account, so the
        chain's index of that address lists every anchor and only anchors."""
        signer = AccountMeta(self._keys.anchor, is_signer=True, is_writable=False)
        instruction = Instruction(tx.MEMO_PROGRAM_ID, memo.encode(), [signer])
        blockhash, last_valid = await self._latest_blockhash()
        message = Message.new_with_blockhash([instruction], self._keys.fee_payer, blockhash)
        tx.require_fits_packet(message)
        signed = self._keys.sign(message, blockhash)
        return SignedSubmission(
            signature=str(signed.signatures[0]), last_valid_block_height=last_valid,
            transaction=bytes(signed), transfer_ids=(),
        )

    # --- helpers ---------------------------------------------------------------

    def _signed(
        self,
        message: Message,
        blockhash: Hash,
        last_valid_block_height: int,
        transfer_ids: tuple[UUID, ...],
        co_signer: CustodyKey | None = None,
    ) -> SignedSubmission:
        tx.require_fits_packet(message)
        signed = self._keys.sign(message, blockhash, co_signer)
        return SignedSubmission(
            signature=str(signed.signatures[0]),
            last_valid_block_height=last_valid_block_height,
            transaction=bytes(signed),
            transfer_ids=transfer_ids,
        )

    async def _sign(self, instructions: list[Instruction],
                    co_signer: CustodyKey | None = None) -> SignedSubmission:
        blockhash, last_valid = await self._latest_blockhash()
        message = Message.new_with_blockhash(instructions, self._keys.fee_payer, blockhash)
        return self._signed(message, blockhash, last_valid, transfer_ids=(), co_signer=co_signer)

    async def _simulated(self, packed: tx.Packed, blockhash: Hash) -> _Attempt:
        return _Attempt(packed, await self._simulate(self._keys.sign(packed.message, blockhash)))

    def _refused_movement(self, attempt: _Attempt) -> bool:
        """The simulation failed on an instruction of a transaction carrying
        several movements (not for the fee payer's lack of SOL: all of them
        wait; nor for the transaction's or the node's troubles)."""
        error = attempt.simulation.error_wire
        return (isinstance(error, dict) and "InstructionError" in error
                and attempt.packed.count > 1
                and not tx.refused_for_fee_payer(attempt.packed.message, error))

    async def _isolated(
        self, failed: _Attempt, movements: Sequence[ChainMovement], missing: dict[UUID, int],
        rent: tx.RentLamports, blockhash: Hash, net: bool,
    ) -> _Attempt:
        """The longest prefix the chain accepts in simulation, found by
        bisection (a prefix holding a refused movement is refused: it fails
        at that movement's instruction), or the first refused movement alone
        when it is the first. Simulations are free; a packed transaction the
        chain refused cost one fee per movement, each signed again alone,
        up to ~15 fees for one bad withdrawal. The rest is signed packed by
        the next call, and the refused one alone fails alone."""
        accepted: _Attempt | None = None
        refused = failed
        while refused.packed.count - (accepted.packed.count if accepted else 0) > 1:
            low = accepted.packed.count if accepted else 0
            count = (low + refused.packed.count) // 2
            packed = tx.pack_movements(
                self._keys.authorities, movements[:count], missing, rent, blockhash,
                self._mint, net=net, price_micro_lamports=self._fees.price_micro_lamports,
                held=missing)
            assert packed is not None and packed.count == count  # a prefix of what fitted
            attempt = await self._simulated(packed, blockhash)
            if attempt.simulation.error_wire is not None:
                refused = attempt
            else:
                accepted = attempt
        return accepted or refused

    def _measured(
        self, attempt: _Attempt, movements: Sequence[ChainMovement], rent: tx.RentLamports,
        blockhash: Hash, net: bool,
    ) -> Message:
        """The packed message asking for the units a simulation of it
        consumed, plus the margin (compute_budget.py says why simulate). A
        transaction the simulation fails keeps the largest limit: sending
        it reports the failure as without a budget."""
        packed, units = attempt.packed, attempt.simulation.units
        if units is None:
            return packed.message
        return tx.movements_message(
            self._keys.authorities, movements, packed.accounts_to_create, rent, blockhash,
            self._mint, net=net, units=units_with_margin(units),
            price_micro_lamports=self._fees.price_micro_lamports, held=packed.held)

    async def _cached_rent(self) -> tx.RentLamports:
        if self._rent is None:
            self._rent = await self._rent_lamports()
        return self._rent

    async def _genesis_instructions(
        self, treasury_id: UUID, initial_supply: int
    ) -> list[Instruction]:
        roles = self._keys.authorities
        rent = await self._cached_rent()
        treasury = tx.token_account_address(roles.address_base, treasury_id)
        mint_data = await self._account_data(self._mint)
        treasury_exists = await self._account_exists(treasury)
        if self._mint_given:
            self._require_usable_mint(mint_data, treasury_exists)
        instructions: list[Instruction] = []
        if mint_data is None:
            instructions += tx.create_mint_instructions(roles, rent)
        if not treasury_exists:
            instructions += tx.create_token_account_instructions(
                roles, treasury_id, rent, self._mint)
        if mint_data is None or tx.mint_supply(mint_data) == 0:
            instructions.append(tx.mint_to_instruction(
                roles.mint_authority, treasury, initial_supply, self._mint))
            memo = f"{GENESIS_MEMO_PREFIX}{treasury_id}".encode()
            instructions.append(Instruction(tx.MEMO_PROGRAM_ID, memo, []))
        return instructions

    def _require_usable_mint(self, data: bytes | None, treasury_exists: bool) -> None:
        """A given mint must exist, have DEAL's decimals and the mint
        authority key as its mint authority, and hold no supply before the ledger's genesis
        (the ledger's supply is the mint's): else settlement stops, saying why."""
        where = f"DEALS_SOLANA_MINT {self._mint}"
        if data is None:
            raise ChainError(f"{where}: no mint at that address on this chain")
        problem = tx.mint_problem(data, self._keys.mint_authority)
        if problem is not None:
            raise ChainError(f"{where} {problem}")
        if not treasury_exists and tx.mint_supply(data) != 0:
            raise ChainError(f"{where} already has a supply; the ledger needs a mint with none, "
                             "whose tokens only it issues")

    async def _accounts_to_create(self, account_ids: list[UUID]) -> dict[UUID, int]:
        """The token accounts to create, each with the lamports already at
        its address (0 for none; see ``_lamports_before_creation``)."""
        missing: dict[UUID, int] = {}
        for account_id in account_ids:
            address = tx.token_account_address(self._keys.address_base, account_id)
            held = await self._lamports_before_creation(account_id, address)
            if held is None:
                continue
            await self._refuse_if_creation_in_flight(address)
            missing[account_id] = held
        return missing

    def _refusal(self, submission: SignedSubmission, reason: str,
                 error_wire: object) -> ChainRejectedError:
        """What a send the chain refused raises (the creations it carried
        forgotten): ``FeePayerRefusedError`` when the fee payer could not
        pay, which is never the movements' fault."""
        self._forget_creations_of(submission.signature)
        message = Transaction.from_bytes(submission.transaction).message
        if tx.refused_for_fee_payer(message, error_wire):
            return FeePayerRefusedError(reason)
        return ChainRejectedError(reason)

    def _forget_creations_of(self, signature: str) -> None:
        """A submission the chain rejected creates nothing (and is never
        sent again, see ``ChainRejectedError``): its movements may be signed
        again at once, with the creations they need."""
        for address, in_flight in list(self._creations_in_flight.items()):
            if in_flight.signature == signature:
                del self._creations_in_flight[address]

    async def custody_account_problem(self, account_id: UUID) -> str | None:
        address = tx.token_account_address(self._keys.address_base, account_id)
        account = await self._account(address)
        if account is None:
            return "it does not exist"
        return custody_account_problem(*account, mint=self._mint, owner=self._keys.owner)

    async def _lamports_before_creation(self, account_id: UUID, address: Pubkey) -> int | None:
        """None when the custody token account exists and is safe to send
        to; else it is to be created, over the lamports already at its
        address (0 when nothing is there). One read per account, once: a
        token account the owner key owns, with no delegate and no close
        authority, stays so (only the owner key could change that). One that
        exists but is not safe (``custody_accounts``) raises
        ``CustodyAccountUnsafeError``: nothing is signed to it. An address
        holding only lamports (anyone can send them, no key needed) is not
        remembered: the creation makes them part of the rent."""
        if address in self._known_accounts:
            return None
        account = await self._account(address)
        if account is None:
            return 0
        if holds_only_lamports(*account):
            return await self._lamports(address)
        problem = custody_account_problem(*account, mint=self._mint, owner=self._keys.owner)
        if problem is not None:
            raise CustodyAccountUnsafeError(account_id, str(address), problem)
        self._known_accounts.add(address)
        self._creations_in_flight.pop(address, None)
        return None

    async def _refuse_if_creation_in_flight(self, address: Pubkey) -> None:
        in_flight = self._creations_in_flight.get(address)
        if in_flight is None:
            return
        if await self.block_height() > in_flight.last_valid_block_height:
            del self._creations_in_flight[address]  # it can no longer land
            return
        status = (await self.signature_statuses([in_flight.signature]))[in_flight.signature]
        if status is not None and status.error is not None:
            del self._creations_in_flight[address]  # landed failed: nothing created
            return
        raise TokenAccountCreationPendingError(
            f"token account {address} is created by submission {in_flight.signature}, "
            f"which may land until block height {in_flight.last_valid_block_height}"
        )

    async def _await_landing(self, submission: SignedSubmission) -> None:
        """Poll (bounded) until the transaction landed, failed, or expired."""
        for _ in range(GENESIS_POLLS_MAX):
            status = (await self.signature_statuses([submission.signature]))[submission.signature]
            if status is not None and status.error is None:
                return
            if status is not None:
                raise GenesisError(f"transaction {submission.signature} failed on chain: "
                                   f"{status.error}")
            if await self.block_height() > submission.last_valid_block_height:
                raise GenesisError(f"transaction {submission.signature} expired before landing")
            await asyncio.sleep(GENESIS_POLL_INTERVAL_S)
        raise GenesisError(f"transaction {submission.signature} did not land in time")

    async def _require_powers(self, treasury_id: UUID) -> None:
        """The configured keys must hold their powers on chain: the mint
        authority key mints (and, on the ledger's own mint, freezes), the
        owner key owns the treasury's token account (a rotation changes the
        treasury last, so a finished one shows there). Else settlement stops
        with a ``ChainError`` saying which key and what to do."""
        problem = powers_problem(
            self._keys, await self._account_data(self._mint),
            await self._account_data(tx.token_account_address(self._keys.address_base,
                                                              treasury_id)),
            check_freeze=not self._mint_given)
        if problem is not None:
            raise ChainError(problem)


def powers_problem(keys: CustodyKeys, mint_data: bytes | None, treasury_data: bytes | None,
                   *, check_freeze: bool = True) -> str | None:
    """Why the configured keys do not hold their powers on chain (None: they do)."""
    if mint_data is None or treasury_data is None:
        return "the mint or the treasury's token account is missing on chain"
    mint = tx.decode_mint(mint_data)
    if mint.mint_authority != keys.mint_authority:
        return (f"the mint's mint authority is {mint.mint_authority}, not the configured mint "
                f"authority key {keys.mint_authority}: set DEALS_MINT_AUTHORITY_KEYPAIR to its "
                "key, or finish the rotation (deals-ledger custody rotate mint-authority)")
    if check_freeze and mint.freeze_authority not in (None, keys.mint_authority):
        return (f"the mint's freeze authority is {mint.freeze_authority}, not the configured mint "
                f"authority key {keys.mint_authority}: finish the rotation "
                "(deals-ledger custody rotate mint-authority)")
    owner = tx.decode_token_account(treasury_data).owner
    if owner != keys.owner:
        return (f"the custody token accounts' owner is {owner}, not the configured owner key "
                f"{keys.owner}: set DEALS_CUSTODY_OWNER_KEYPAIR to its key, or finish the "
                "rotation (deals-ledger custody rotate owner)")
    return None


def require_statuses_bound(signatures: Sequence[str]) -> None:
    if len(signatures) > SIGNATURE_STATUSES_MAX:
        raise ValueError(f"signatures_must_be_at_most_{SIGNATURE_STATUSES_MAX}")
