"""The cost of mirroring (issue 18): lamports the fee payer spent per 1,000
settled movements, read back from the embedded chain's own index of landed
transactions (``EmbeddedSolana.signatures_for_address`` of the fee payer:
every settlement transaction is paid by it).

Two figures, because they are different money: the fees the chain charged
(``fee`` of each landed transaction: base fee per signature plus the
priority fee) and everything the fee payer's balance lost in those
transactions (fees plus the rent of the token accounts they created, which
stays locked in those accounts rather than being burnt). Summed per
transaction, not as a balance difference, because the embedded chain's
faucet tops the fee payer up. Only transactions whose memo names movements
count (genesis and anchors are not movements).
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from interface.chain.embedded import EmbeddedSolana

PAGE = 1000


@dataclass(frozen=True)
class ChainCost:
    transactions: int
    movements: int
    fee_lamports: int
    spent_lamports: int
    """Fees plus the rent of the token accounts created."""

    def per_thousand(self, lamports: int) -> float:
        return 1000 * lamports / self.movements if self.movements else 0.0

    @property
    def fees_per_thousand(self) -> float:
        return self.per_thousand(self.fee_lamports)

    @property
    def spent_per_thousand(self) -> float:
        return self.per_thousand(self.spent_lamports)

    def describe(self) -> str:
        return (f"{self.fees_per_thousand:,.0f} lamports in fees per 1,000 settled movements "
                f"({self.spent_per_thousand:,.0f} with the rent of new token accounts); "
                f"{self.movements:,} movements in {self.transactions:,} transactions")


def settlement_cost(chain: EmbeddedSolana, fee_payer: Pubkey) -> ChainCost:
    """What the fee payer paid for the settlement transactions that landed
    without error (a failed one pays its fee and settles nothing: counted
    in the lamports, not in the movements)."""
    transactions = movements = fees = spent = 0
    before: str | None = None
    while page := chain.signatures_for_address(str(fee_payer), before=before, limit=PAGE):
        for landed in page:
            if not landed.memo_transfer_ids:
                continue
            transactions += 1
            movements += 0 if landed.error else len(landed.memo_transfer_ids)
            fees += landed.fee
            spent += landed.pre_lamports[0] - landed.post_lamports[0]
        before = page[-1].signature
    return ChainCost(transactions, movements, fees, spent)
