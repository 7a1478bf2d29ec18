"""What a transaction carrying some movements must have done on chain, leg by
leg, for the reconciliation and the restore lookup alike.

A movement moves tokens from its source's custody token account to its
destination's, or, for a withdrawal, to the associated token account of the
wallet it names (its destination is the external account, which has none),
or, for a deposit return, to the token account the deposit came from.
A mint has no source token account (the mint's supply grows) and a burn no
destination. A landed transaction matches its movements when every token
account changed by their sum, the withdrawals' wallets included, and, when
it carries one transfer a movement (not netted), each movement's own
transfer (source, destination, amount) is among them: the chain holds no
finer record of a netted transfer than its sum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from application.settlement.chain_port import ChainPort, ChainTransaction
from application.settlement.store import Movement
from domain.system import CUSTODY_LESS_ACCOUNTS

Leg = tuple[str, str, int]
"""A transfer on chain: source token account, destination token account, amount."""


def expected_deltas(movements: Iterable[Movement], chain: ChainPort) -> dict[str, int]:
    """Token account address -> the sum of what the movements do to it."""
    expected: dict[str, int] = {}
    for movement in movements:
        for address, change in _sides(movement, chain):
            expected[address] = expected.get(address, 0) + change
    return expected


def transfer_leg(movement: Movement, chain: ChainPort) -> Leg | None:
    """The ``transfer_checked`` a movement is on chain; None for a mint or a
    burn (no transfer) and for a deposit (the depositor's own)."""
    if movement.source in CUSTODY_LESS_ACCOUNTS:
        return None
    destination = _destination(movement, chain)
    if destination is None:
        return None
    return chain.token_account_address(movement.source), destination, movement.amount


def disagreement(landed: ChainTransaction, movements: list[Movement], chain: ChainPort,
                 *, all_named: bool = True) -> str | None:
    """Why ``landed`` did not do what ``movements`` (those of its memo the
    log has) would; None when it did, or when that cannot be told.
    ``all_named``: the log has every movement the memo names, so every token
    account must have changed by their sum; else only a transaction of one
    transfer a named movement is judged, by each known one's transfer."""
    legs = [leg for movement in movements if (leg := transfer_leg(movement, chain)) is not None]
    carried = Counter((moved.source, moved.destination, moved.amount)
                      for moved in landed.token_transfers)
    if all_named:
        why = _deltas_disagree(landed, expected_deltas(movements, chain))
        if why is not None or len(landed.token_transfers) != len(legs):
            return why  # netted (or mints and burns only): the sums are all there is
        return _missing_leg(legs, carried)
    if not decidable(landed, all_named=False):
        return None
    return _missing_leg(legs, carried)


def decidable(landed: ChainTransaction, *, all_named: bool) -> bool:
    """Whether ``disagreement`` can tell: with movements of the memo unknown
    to the log, only a transaction of one transfer a named movement is."""
    return all_named or len(landed.token_transfers) == len(landed.memo_transfer_ids)


def _deltas_disagree(landed: ChainTransaction, expected: dict[str, int]) -> str | None:
    for address in sorted(expected.keys() | landed.token_deltas.keys()):
        actual, change = landed.token_deltas.get(address, 0), expected.get(address, 0)
        if actual != change:
            return (f"token account {address} changed by {actual} base units where "
                    f"the log's movements would change it by {change}")
    return None


def _missing_leg(legs: list[Leg], carried: Counter[Leg]) -> str | None:
    for leg in legs:
        if not carried[leg]:
            return (f"it carries no transfer of {leg[2]} base units from {leg[0]} to "
                    f"{leg[1]}")
        carried[leg] -= 1
    return None


def _sides(movement: Movement, chain: ChainPort) -> list[tuple[str, int]]:
    sides = []
    if movement.source not in CUSTODY_LESS_ACCOUNTS:
        sides.append((chain.token_account_address(movement.source), -movement.amount))
    destination = _destination(movement, chain)
    if destination is not None:
        sides.append((destination, movement.amount))
    return sides


def _destination(movement: Movement, chain: ChainPort) -> str | None:
    """Where the tokens land: the destination's custody token account, a
    deposit return's token account (the deposit's source), a withdrawal's
    wallet's associated token account, or nowhere (a burn)."""
    if movement.destination not in CUSTODY_LESS_ACCOUNTS:
        return chain.token_account_address(movement.destination)
    if movement.token_account is not None:
        return movement.token_account
    if movement.address is not None:
        return chain.wallet_token_account_address(movement.address)
    return None
