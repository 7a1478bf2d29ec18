"""interface.chain.netting: a transaction's movements as netted legs.

Properties, over any sequence of movements the ledger could have ordered
(no balance below zero on the way): the legs move exactly what the
movements move on every account, never go below zero on the way either,
sum only same-direction transfers between two token accounts, and leave
mints and burns as they are."""

from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from application.settlement.chain_port import ChainMovement
from interface.chain import transactions as tx
from interface.chain.netting import TOKEN_AMOUNT_MAX, is_nettable, net_movements

ACCOUNTS = [uuid4() for _ in range(4)]
START = 50


def changes(movements: list[ChainMovement]) -> dict[UUID | None, int]:
    total: dict[UUID | None, int] = {}
    for movement in movements:
        total[movement.source] = total.get(movement.source, 0) - movement.amount
        total[movement.destination] = total.get(movement.destination, 0) + movement.amount
    total.pop(None, None)
    return {account: change for account, change in total.items() if change}


def stays_non_negative(movements: list[ChainMovement]) -> bool:
    balances = dict.fromkeys(ACCOUNTS, START)
    for movement in movements:
        if movement.source is not None:
            balances[movement.source] -= movement.amount
            if balances[movement.source] < 0:
                return False
        if movement.destination is not None:
            balances[movement.destination] += movement.amount
    return True


@st.composite
def ledger_ordered(draw: st.DrawFn) -> list[ChainMovement]:
    """Transfers, mints (no source) and burns (no destination) among a few
    accounts, each keeping every balance at or above zero."""
    balances = dict.fromkeys(ACCOUNTS, START)
    movements: list[ChainMovement] = []
    for _ in range(draw(st.integers(0, 30))):
        source = draw(st.sampled_from([None, *ACCOUNTS]))
        destination = draw(st.sampled_from([None, *(a for a in ACCOUNTS if a != source)]))
        if source is None and destination is None:
            continue
        room = START * 4 if source is None else balances[source]
        if room < 1:
            continue
        amount = draw(st.integers(1, room))
        if source is not None:
            balances[source] -= amount
        if destination is not None:
            balances[destination] += amount
        movements.append(ChainMovement(uuid4(), source, destination, amount))
    return movements


@settings(max_examples=300, deadline=None)
@given(ledger_ordered())
def test_legs_move_what_the_movements_move_and_never_overdraw(
    movements: list[ChainMovement],
) -> None:
    legs = net_movements(movements)
    assert changes(legs) == changes(movements)
    assert stays_non_negative(legs)
    assert len(legs) <= len(movements)
    assert [leg for leg in legs if not is_nettable(leg)] == [
        movement for movement in movements if not is_nettable(movement)]


def test_same_direction_sums_and_opposite_directions_stay_apart() -> None:
    alice, bob = ACCOUNTS[:2]
    there = [ChainMovement(uuid4(), alice, bob, amount) for amount in (1, 2, 3)]
    back = ChainMovement(uuid4(), bob, alice, 4)

    legs = net_movements([*there, back])

    assert [(leg.source, leg.destination, leg.amount) for leg in legs] == [
        (alice, bob, 6), (bob, alice, 4)]


def test_a_group_never_sums_past_a_token_amount() -> None:
    alice, bob = ACCOUNTS[:2]
    big = [ChainMovement(uuid4(), alice, bob, TOKEN_AMOUNT_MAX - 1) for _ in range(2)]
    assert len(net_movements(big)) == 2


def test_a_netted_transaction_names_every_movement_in_ledger_order() -> None:
    roles = tx.Authorities.single(tx.Pubkey.new_unique())
    rent = tx.RentLamports(mint_account=1, token_account=1)
    alice, bob = ACCOUNTS[:2]
    movements = [ChainMovement(uuid4(), alice, bob, 5)
                 for _ in range(tx.NETTED_MOVEMENTS_PER_TRANSACTION_MAX + 3)]

    packed = tx.pack_movements(roles, movements, [], rent, tx.Hash.default(), net=True)

    assert packed is not None and packed.count == tx.NETTED_MOVEMENTS_PER_TRANSACTION_MAX
    assert tx.memo_transfer_ids(tx.memo_texts(packed.message)) == tuple(
        movement.transfer_id for movement in movements[:packed.count])
    assert tx.NETTED_MOVEMENTS_PER_TRANSACTION_MAX > tx.MOVEMENTS_PER_TRANSACTION_MAX


WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"  # any on-curve address


def test_withdrawals_and_mints_are_never_netted() -> None:
    alice = ACCOUNTS[0]
    withdrawals = [ChainMovement(uuid4(), alice, None, 1, destination_wallet=WALLET)
                   for _ in range(3)]
    mints = [ChainMovement(uuid4(), None, alice, 1) for _ in range(3)]
    assert net_movements(withdrawals + mints) == withdrawals + mints
