"""Netting: the movements of one transaction between the same two token
accounts, in the same direction, become one ``transfer_checked`` of their
sum (the optional mode ``DEALS_SETTLEMENT_NETTING_WINDOW_S``, docs/solana.md).

Why here and not in the ledger: netting changes how a transaction carries
movements, never what moves. Every movement keeps its own id in the memo
(``deal:<id>,<id>,...``, in ledger order) and is recorded settled with the
transaction's signature; the chain shows one delta per token account equal
to the sum of the movements the memo names, which is what reconciliation
checks of every settled transaction, netted or not.

Only transfers between two custody token accounts net. A mint (no source)
or a burn (no destination) keeps its own instruction, and so does any other
movement kind that is not a plain token-account-to-token-account transfer.
Opposite directions (A->B and B->A) are never netted into one difference:
each direction is its own sum, so the chain still shows each account paying
what the named movements say it paid.

Order: a transaction's instructions run in order and no balance may go
negative on the way, which the ledger's order guarantees. A group's sum is
placed where its LAST member was: the source then pays later than in the
ledger's order (it holds more meanwhile, never less), and the destination
is credited later, so a group is closed as soon as a later movement of the
transaction takes from its destination (that movement must find the
credits there). The sum of a group never exceeds a token amount's u64.

Everything here is pure and deterministic: both adapters build the same
bytes for the same movements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from application.settlement.chain_port import ChainMovement
from domain.system import CUSTODY_LESS_ACCOUNTS

TOKEN_AMOUNT_MAX = 2**64 - 1
"""An SPL token amount is a u64: a group's sum stays within it."""


def is_nettable(movement: ChainMovement) -> bool:
    """A plain transfer between two custody token accounts (not a mint, a
    burn, nor a withdrawal or anything else on an account without a custody
    token account, ``domain.system.CUSTODY_LESS_ACCOUNTS``)."""
    return (movement.source is not None and movement.destination is not None
            and not {movement.source, movement.destination} & CUSTODY_LESS_ACCOUNTS)


@dataclass
class _Group:
    """Movements summed into one instruction, placed at ``last``."""

    first: ChainMovement
    last: int
    amount: int

    def leg(self) -> ChainMovement:
        """The first movement with the group's sum: every other field (a
        withdrawal's ``destination_wallet``) kept, or a withdrawal would be
        signed as a burn."""
        return replace(self.first, amount=self.amount)


def net_movements(movements: Sequence[ChainMovement]) -> list[ChainMovement]:
    """The movements one instruction each, in instruction order: groups of
    nettable movements with the same (source, destination) as one movement
    of their sum (named by the group's first id; the memo names them all),
    others as they are. Shapes: amounts in base units, as given."""
    placed: list[_Group] = []
    open_groups: dict[tuple[UUID | None, UUID | None], _Group] = {}
    for index, movement in enumerate(movements):
        _close_paid_from(open_groups, movement.source)
        key = (movement.source, movement.destination)
        group = open_groups.get(key) if is_nettable(movement) else None
        if group is not None and group.amount + movement.amount <= TOKEN_AMOUNT_MAX:
            group.amount += movement.amount
            group.last = index
            continue
        group = _Group(movement, index, movement.amount)
        placed.append(group)
        if is_nettable(movement):
            open_groups[key] = group
    return [group.leg() for group in sorted(placed, key=lambda group: group.last)]


def _close_paid_from(open_groups: dict[tuple[UUID | None, UUID | None], _Group],
                     account: UUID | None) -> None:
    """A movement taking from ``account`` must find every earlier credit to
    it in place: no later member may join a group crediting it."""
    if account is None:
        return
    for key in [key for key in open_groups if key[1] == account]:
        del open_groups[key]
