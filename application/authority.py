"""Who may debit the system accounts: only an admin, through any command.

The treasury holds the platform's revenue and the rewards pool its reward
budget; the issuance account is the other side of mint and burn (the domain
refuses it in anything else). Any caller moves tokens between users,
charges fees into the treasury and pays rewards out of the pool (the one
debit of a system account a command is made for, ``Debits.by_design``). It
must not move the system's own funds anywhere else: not by a transfer, a
batch item or a spender's transfer from a system account, not by an
allowance a system account grants, nor by a hold or a fee that reserves or
takes system funds, nor by a command whose debits only the ledger's state
names (a reversal). Those need an admin, as mint and burn do.

Each command declares its debits (``Command.debits``; one that does not is
taken to debit any account), and the command writer checks them against
the sender's ``Authority`` before it queues the command: the one place
every command passes. The ledger's own callers (genesis, settlement, hold
expiry, reconciliation) send as a system authority (``system``), which
also names the step in what its events record (``domain.provenance``).

A declaration is not taken on trust: once a command is decided, the
processor compares the debits its events make with what it declared
(``undeclared_debits``), and a command that debits an account it did not
declare is refused as a bug, whoever sent it. So a wrong declaration fails
the first test that runs the command, instead of letting a write key move
the system's funds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.commands import Command
from domain.account import Account
from domain.errors import LedgerError
from domain.ids import check_client_id
from domain.provenance import (
    SYSTEM_GENESIS,
    SYSTEM_LEDGER,
    SYSTEM_SETTLER,
    SYSTEM_SWEEPER,
    Provenance,
)
from domain.system import SYSTEM_ACCOUNTS, WELL_KNOWN_IDS

_SYSTEM_KIND_BY_ID = {account_id: kind for kind, account_id in SYSTEM_ACCOUNTS.items()}


@dataclass(frozen=True)
class Authority:
    """Who sends a command, as far as the ledger's rules ask: a name for
    refusals (an API key's name, never its token) and whether it is an
    admin; and who asked, as its command's events record it
    (``domain.provenance``; None records nothing: a test's sender)."""

    name: str
    admin: bool
    provenance: Provenance | None = None
    internal: bool = False
    """The ledger itself: it may use the ids it derives for itself."""


def system(actor: str) -> Authority:
    """The ledger's own callers, which act on what the log already holds;
    ``actor`` names which of them in the events they write."""
    return Authority("the ledger", admin=True, provenance=Provenance(actor), internal=True)


INTERNAL = system(SYSTEM_LEDGER)
GENESIS = system(SYSTEM_GENESIS)
SETTLER = system(SYSTEM_SETTLER)
SWEEPER = system(SYSTEM_SWEEPER)


class SystemDebitNeedsAdmin(LedgerError):
    """A sender that is not an admin sent a command that debits the
    treasury, the rewards pool or the issuance account, other than the
    debit the command is made for, or one whose debits only the ledger's
    state names."""

    code = "forbidden"


def check_admission(command: Command, authority: Authority) -> None:
    """Everything the writer asks of a sender before queueing its command:
    the debits it may make, and, unless the ledger itself sends it, that no
    id it chose is one the ledger derives for itself (``domain.ids``)."""
    check_debits(command, authority)
    if not authority.internal:
        for field, chosen in command.chosen_ids():
            check_client_id(chosen, field, WELL_KNOWN_IDS)


def check_debits(command: Command, authority: Authority) -> None:
    """Refuse the command unless ``authority`` may debit all it debits."""
    if authority.admin:
        return
    debits = command.debits()
    if debits.unknown:
        raise SystemDebitNeedsAdmin(
            f"{authority.name} is not an admin: only an admin may send {command.kind}, "
            "whose debits only the ledger's state names"
        )
    for account_id in sorted(debits.accounts - debits.by_design):
        kind = _SYSTEM_KIND_BY_ID.get(account_id)
        if kind is not None:
            raise SystemDebitNeedsAdmin(
                f"{authority.name} is not an admin: only an admin may debit the {kind} "
                f"account {account_id}"
            )


def undeclared_debits(command: Command, events: Iterable[Any]) -> list[UUID]:
    """Accounts the command's new events debit (``Account.Debited``), reserve
    (``HoldPlaced``) or let others move (a non-zero ``AllowanceSet``) that
    its declaration does not name. A capture is not counted: it takes only
    what a hold reserved, and placing the hold was the checked debit."""
    declared = command.debits()
    if declared.unknown:
        return []
    found: list[UUID] = []
    for event in events:
        if _debits(event) and event.originator_id not in declared.accounts:
            found.append(event.originator_id)
    return found


def _debits(event: Any) -> bool:
    if isinstance(event, Account.Debited | Account.HoldPlaced):
        return True
    return isinstance(event, Account.AllowanceSet) and event.amount > 0
