"""Moving a custody power to a new key on chain (``deals-ledger custody
rotate``), with the SPL Token program's SetAuthority:

- ``mint-authority``: the mint's MintTokens and FreezeAccount authorities
  (the freeze authority goes with the mint authority), one transaction.
- ``owner``: the AccountOwner of every custody token account, as many a
  transaction as fit a packet, the treasury's last: the start-up check
  (``base.powers_problem``) reads the treasury, so it only passes with the
  new key once every account has moved.
- ``fee-payer``: nothing on chain holds it, so the rotation lands a link:
  a memo (``FEE_PAYER_ROTATION_MEMO``) the old fee payer pays for and the
  new one co-signs, by which the restore lookup finds the old one's history
  from the new one's (``application.settlement.chain_lookup``); optionally
  the old fee payer tops the new one up to a given balance.

Every step reads the chain's current authority first, so a rotation that
crashed midway is finished by running it again: what already moved is
skipped, what still names the old key is moved, anything naming a third key
is refused by name. The old key signs (it holds the power until it moves);
the fee payer pays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.instructions import set_authority
from spl.token.models import AuthorityType, SetAuthorityParams

from application.settlement.chain_port import FEE_PAYER_ROTATION_MEMO, ChainError
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain
from interface.chain.custody import CustodyKey

ROLES = ("mint-authority", "owner", "fee-payer")


class RotationError(ChainError):
    """The chain holds a power under a key that is neither the old nor the
    new one, or the new key is unusable: nothing further was changed."""


@dataclass
class RotationReport:
    """What a rotation found and did; ``signatures`` of what it sent."""

    role: str
    old: str
    new: str
    moved: int = 0
    already: int = 0
    signatures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "old": self.old, "new": self.new, "moved": self.moved,
                "already": self.already, "signatures": list(self.signatures)}


def set_authority_instruction(
    target: Pubkey, kind: AuthorityType, current: Pubkey, new: Pubkey
) -> Instruction:
    return set_authority(SetAuthorityParams(
        program_id=tx.TOKEN_PROGRAM_ID, account=target, authority=kind,
        current_authority=current, new_authority=new))


async def rotate_mint_authority(chain: SeededTokenChain, new: Pubkey) -> RotationReport:
    old = chain.keys.mint_authority
    report = RotationReport("mint-authority", str(old), str(new))
    data = await chain.account_data(chain.mint)
    if data is None:
        raise RotationError(f"no mint at {chain.mint} on this chain")
    mint = tx.decode_mint(data)
    instructions = []
    for kind, holder in ((AuthorityType.MINT_TOKENS, mint.mint_authority),
                         (AuthorityType.FREEZE_ACCOUNT, mint.freeze_authority)):
        if holder is None and kind is AuthorityType.FREEZE_ACCOUNT:
            continue  # a mint without a freeze authority keeps none
        if holder == new:
            report.already += 1
        elif holder == old:
            instructions.append(set_authority_instruction(chain.mint, kind, old, new))
        else:
            raise RotationError(f"the mint's {kind.name.lower()} authority is {holder}, "
                                f"neither the configured {old} nor the new {new}")
    if instructions:
        report.signatures.append(await chain.sign_and_land(instructions))
        report.moved = len(instructions)
    return report


async def rotate_owner(
    chain: SeededTokenChain, new: Pubkey, account_ids: Iterable[UUID], treasury_id: UUID
) -> RotationReport:
    """``account_ids``: every ledger account that may have a token account
    (those without one are skipped); the treasury's is moved last."""
    old = chain.keys.owner
    report = RotationReport("owner", str(old), str(new))
    ordered = [account for account in dict.fromkeys(account_ids) if account != treasury_id]
    to_move: list[Pubkey] = []
    for account_id in [*ordered, treasury_id]:
        address = tx.token_account_address(chain.keys.address_base, account_id)
        data = await chain.account_data(address)
        if data is None:
            continue
        owner = tx.decode_token_account(data).owner
        if owner == new:
            report.already += 1
        elif owner == old:
            to_move.append(address)
        else:
            raise RotationError(f"token account {address} is owned by {owner}, neither the "
                                f"configured {old} nor the new {new}")
    for batch in _batches(chain, to_move, old, new):
        report.signatures.append(await chain.sign_and_land(batch))
        report.moved += len(batch)
    return report


def _batches(
    chain: SeededTokenChain, addresses: list[Pubkey], old: Pubkey, new: Pubkey
) -> list[list[Instruction]]:
    """As many SetAuthority instructions a transaction as fit a packet
    (measured on the real serialized size), in order."""
    batches: list[list[Instruction]] = []
    current: list[Instruction] = []
    for address in addresses:
        instruction = set_authority_instruction(address, AuthorityType.ACCOUNT_OWNER, old, new)
        if current and not _fits(chain, [*current, instruction]):
            batches.append(current)
            current = []
        current.append(instruction)
    if current:
        batches.append(current)
    return batches


def _fits(chain: SeededTokenChain, instructions: list[Instruction]) -> bool:
    message = Message.new_with_blockhash(instructions, chain.keys.fee_payer, Hash.default())
    return tx.serialized_size(message) <= tx.PACKET_DATA_SIZE


async def move_fee_payer_sol(chain: SeededTokenChain, new: Pubkey, lamports: int) -> str | None:
    """Top the new fee payer up to ``lamports`` from the (old) one, which
    pays that transfer's fee too (5,000 a signature); the signature, or None
    when the new one already holds that much. A top-up rather than "send N",
    so that the rerun a crash calls for does not send it twice (a run killed
    after its transfer landed, before the key was installed, did)."""
    if lamports < 1:
        raise RotationError("lamports to move must be positive")
    missing = lamports - await chain.lamports(new)
    if missing <= 0:
        return None
    return await chain.sign_and_land([transfer(TransferParams(
        from_pubkey=chain.keys.fee_payer, to_pubkey=new, lamports=missing))])


async def link_fee_payers(chain: SeededTokenChain, new: CustodyKey) -> str:
    """Land the rotation's link: a memo the (old) fee payer pays for and
    ``new`` signs as well (the memo program checks the signature of every
    account it names), so the new fee payer's history holds, under its own
    signature, the name of the one before it; its signature. Landed again
    by a rerun: a second link names the same old key."""
    memo = Instruction(tx.MEMO_PROGRAM_ID, FEE_PAYER_ROTATION_MEMO.encode(),
                       [AccountMeta(new.pubkey, is_signer=True, is_writable=False)])
    return await chain.sign_and_land([memo], co_signer=new)
