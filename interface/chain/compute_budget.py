"""What a settlement transaction asks the chain for, and pays for it: the
compute-budget program's SetComputeUnitLimit (always) and
SetComputeUnitPrice (when a priority fee is configured).

The limit is measured, not guessed: the adapter simulates each transaction
on the chain it is about to be sent to (LiteSVM in-process, RPC
``simulateTransaction``) with the chain's maximum limit, and signs it again
asking for the units the simulation consumed plus
``COMPUTE_UNIT_MARGIN_PERCENT``. Simulation rather than a per-instruction
table, because the costs differ by chain: the SPL Token program bundled
with LiteSVM spends ~105 units on a ``transfer_checked`` (measured) where
the classic program is usually said to spend ~6,000 (not measured here),
and a table measured on one would starve transactions on the other (the
runtime's "exceeded CUs meter": a failed movement). The price of it: one
more simulation per transaction, an RPC round trip on a cluster.

The priority fee is the price (micro-lamports per unit) times the limit;
``PriorityFees`` refuses a price whose fee at the chain's largest limit
would exceed the cap, so no settlement transaction can ever pay more than
the cap in priority fees, whatever its measured units.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction

COMPUTE_UNIT_LIMIT_MAX = 1_400_000
"""The most units one transaction may ask for (the runtime's limit); also
the limit the measuring simulation runs with."""
COMPUTE_UNIT_MARGIN_PERCENT = 10
"""Asked for on top of the simulated units: execution is deterministic for
the same accounts, but a token account's state may change between the
simulation and the landing (another movement landing first)."""
MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
U64_MAX = 2**64 - 1
"""SetComputeUnitPrice carries the price as a u64, and a lamport balance is
a u64: a price or a cap above it cannot be sent or paid."""
PRIORITY_FEE_CAP_LAMPORTS_DEFAULT = 100_000
"""0.0001 SOL a transaction (20 times the base fee of one signature)."""


@dataclass(frozen=True)
class PriorityFees:
    """The configured price (DEALS_PRIORITY_FEE_MICROLAMPORTS, micro-lamports
    per compute unit; 0: no price instruction) and the cap on one
    transaction's priority fee (DEALS_PRIORITY_FEE_CAP_LAMPORTS, lamports).
    ValueError when the price could exceed the cap."""

    price_micro_lamports: int = 0
    cap_lamports: int = PRIORITY_FEE_CAP_LAMPORTS_DEFAULT

    def __post_init__(self) -> None:
        problem = price_problem(self.price_micro_lamports, self.cap_lamports)
        if problem is not None:
            raise ValueError(problem)


def price_problem(price_micro_lamports: int, cap_lamports: int) -> str | None:
    """Why a price and cap cannot run (None: they can), in words an operator
    reads at start: the price at the largest limit must fit the cap."""
    if price_micro_lamports < 0 or cap_lamports < 0:
        return "the priority fee price and cap must not be negative"
    if price_micro_lamports > U64_MAX or cap_lamports > U64_MAX:
        return (f"the priority fee price and cap must be at most {U64_MAX} (a u64): "
                f"price {price_micro_lamports}, cap {cap_lamports}")
    worst = priority_fee_lamports(COMPUTE_UNIT_LIMIT_MAX, price_micro_lamports)
    if worst > cap_lamports:
        most = cap_lamports * MICRO_LAMPORTS_PER_LAMPORT // COMPUTE_UNIT_LIMIT_MAX
        return (f"a price of {price_micro_lamports} micro-lamports per unit may cost {worst} "
                f"lamports a transaction ({COMPUTE_UNIT_LIMIT_MAX:,} units), over the cap of "
                f"{cap_lamports} lamports; at this cap the price may be at most {most}")
    return None


def priority_fee_lamports(units: int, price_micro_lamports: int) -> int:
    """What the runtime charges on top of the signatures' base fee: the
    price times the units asked for (not consumed), rounded up."""
    return -(-units * price_micro_lamports // MICRO_LAMPORTS_PER_LAMPORT)


def units_with_margin(consumed: int) -> int:
    """The limit to ask for after a simulation consumed ``consumed`` units."""
    asked = -(-consumed * (100 + COMPUTE_UNIT_MARGIN_PERCENT) // 100)
    return max(1, min(asked, COMPUTE_UNIT_LIMIT_MAX))


def compute_budget_instructions(units: int, price_micro_lamports: int) -> list[Instruction]:
    """The limit, then the price when there is one (first in a transaction,
    as wallets put them; the runtime reads them anywhere)."""
    instructions = [set_compute_unit_limit(units)]
    if price_micro_lamports:
        instructions.append(set_compute_unit_price(price_micro_lamports))
    return instructions
