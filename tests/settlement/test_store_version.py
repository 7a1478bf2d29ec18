"""Settlement tables written under another schema version are rebuilt from
the log at start (an upgrade that changes what their rows mean)."""

from __future__ import annotations

import pytest

from application.settlement.fold import SettlementFold
from application.settlement.store import (
    FEE_PAYER_ROTATION_META,
    OWNER_ROTATION_META,
    SCHEMA_VERSION_META,
    SETTLEMENT_SCHEMA_VERSION,
    open_settlement_store,
)
from domain.amounts import UNITS_PER_DEAL
from tests.settlement.conftest import SettlementRig

pytestmark = pytest.mark.anyio


async def test_tables_of_another_version_are_emptied_and_folded_again(rig: SettlementRig) -> None:
    alice = rig.open_account(3 * UNITS_PER_DEAL)
    await rig.settle()
    folded = rig.store.position()
    settled = rig.store.balances([alice])
    rig.store.set_meta(SCHEMA_VERSION_META, SETTLEMENT_SCHEMA_VERSION - 1)

    reopened = open_settlement_store(rig.ledger.app.recorder)
    try:
        assert reopened.position() == 0 and reopened.balances([alice]) == {}
        assert reopened.meta(SCHEMA_VERSION_META) == SETTLEMENT_SCHEMA_VERSION
        assert SettlementFold(rig.ledger.app, reopened).catch_up() == folded
        assert reopened.balances([alice]) == settled == {alice: 3 * UNITS_PER_DEAL}
        assert reopened.backlog() == 0
    finally:
        reopened.close()


async def test_an_unfinished_owner_rotation_outlives_a_rebuild_and_an_upgrade(
    rig: SettlementRig,
) -> None:
    """The marks only an operator's command sets (the log cannot say a
    rotation is half done, nor which key the fee payer was rotated to)
    survive what empties the rest: a fold rebuild and tables of another
    version; the derived rows go."""
    rig.open_account(3 * UNITS_PER_DEAL)
    await rig.settle()
    rig.store.set_meta(OWNER_ROTATION_META, 1)
    rig.store.set_meta(FEE_PAYER_ROTATION_META, 2**55 + 7)
    rig.fold.rebuild()
    assert rig.store.meta(OWNER_ROTATION_META) == 1
    assert rig.store.meta(FEE_PAYER_ROTATION_META) == 2**55 + 7
    rig.store.set_meta(SCHEMA_VERSION_META, SETTLEMENT_SCHEMA_VERSION - 1)

    reopened = open_settlement_store(rig.ledger.app.recorder)
    try:
        assert reopened.position() == 0
        assert reopened.meta(OWNER_ROTATION_META) == 1
        assert reopened.meta(FEE_PAYER_ROTATION_META) == 2**55 + 7
    finally:
        reopened.close()
