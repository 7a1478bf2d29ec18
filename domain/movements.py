"""Double-entry movements between two accounts.

A movement is decided in full (both sides checked) before either side
changes, so a refusal leaves both accounts as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.account import EXTERNAL, USER, Account
from domain.amounts import check_amount
from domain.errors import InvalidRequest, SameAccount

TRANSFER = "transfer"
FEE = "fee"
REWARD = "reward"
MINT = "mint"
BURN = "burn"
REVERSAL = "reversal"
WITHDRAWAL = "withdrawal"
DEPOSIT = "deposit"
MOVEMENT_KINDS = (TRANSFER, FEE, REWARD, MINT, BURN, REVERSAL, WITHDRAWAL, DEPOSIT)
ISSUANCE_KINDS = frozenset({MINT, BURN, REVERSAL})
"""The only movements the issuance account takes part in. Its balance may go
negative (that is the supply), so a transfer, fee or reward from it would
create tokens without a mint: without the admin scope and outside the
mint's audit trail."""
EXTERNAL_KINDS = frozenset({WITHDRAWAL, DEPOSIT, REVERSAL})
"""The only movements the external account (tokens outside custody) takes
part in, and the only ones that take part in it: tokens leave custody by a
withdrawal, come in by a deposit, and a failed withdrawal is compensated by
a reversal."""


_NOUNS = {TRANSFER: "a transfer", FEE: "a fee", REWARD: "a reward", MINT: "a mint",
          BURN: "a burn", REVERSAL: "a reversal", WITHDRAWAL: "a withdrawal",
          DEPOSIT: "a deposit"}


def movement_noun(
    kind: str, *, hold: bool = False, by_spender: bool = False, adjustment: bool = False
) -> str:
    """What a movement is, in words, for refusals: "a fee", "a hold"."""
    if adjustment:
        return "a reconciliation adjustment"
    if hold:
        return "a hold"
    if by_spender:
        return "a spender's transfer"
    return _NOUNS.get(kind, f"a {kind}")


@dataclass(frozen=True)
class Posting:
    """What a movement did to its two accounts: the balances right after it."""

    source_balance_after: int
    destination_balance_after: int


def check_movement(
    source: Account, destination: Account, amount: int, kind: str, now: datetime,
    spender: Account | None = None,
) -> None:
    """Every rule a movement must pass, without changing anything. Freeze
    binds every party (the spender moving an owner's funds too), and a
    frozen account is reported before a short balance: it is the cause to fix."""
    check_amount(amount)
    if source.id == destination.id:
        raise SameAccount("source and destination must be different accounts")
    if (source.is_issuance or destination.is_issuance) and kind not in ISSUANCE_KINDS:
        raise InvalidRequest(
            f"the issuance account takes part only in mint and burn, not in a {kind}"
        )
    _check_external(source, destination, kind)
    if kind == REWARD and destination.kind != USER:
        # the pool's budget is for users; paid to the treasury it would drain the pool
        raise InvalidRequest("a reward is paid to a user account, not to a system account")
    source.check_not_frozen()
    destination.check_can_receive()
    if spender is not None:
        spender.check_not_frozen()
    source.check_can_send(amount, now)


def _check_external(source: Account, destination: Account, kind: str) -> None:
    external = source.kind == EXTERNAL or destination.kind == EXTERNAL
    if external and kind not in EXTERNAL_KINDS:
        raise InvalidRequest(
            f"the external account takes part only in withdrawals and deposits, not in a {kind}"
        )
    if kind in (WITHDRAWAL, DEPOSIT) and not external:
        raise InvalidRequest(f"a {kind} moves tokens to or from the external account")


def move(
    source: Account,
    destination: Account,
    *,
    transfer_id: UUID,
    amount: int,
    kind: str,
    reason: str,
    now: datetime,
) -> Posting:
    """Debit ``source`` and credit ``destination`` by ``amount``."""
    check_movement(source, destination, amount, kind, now)
    source.debit(transfer_id, amount, kind, reason, now)
    destination.credit(transfer_id, amount, kind, reason, now)
    return Posting(source.balance, destination.balance)
