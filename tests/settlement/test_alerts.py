"""Settlement and reconciliation raise alerts where they find trouble: a
movement failing on chain, and a reconciliation run with findings."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from application.alerts import AlertKind
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from tests.settlement.conftest import SettlementRig
from tests.support.alerts import CollectedAlerts

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


async def test_a_movement_failing_on_chain_alerts_with_its_transfer_and_signature(
    sqlite_rig: SettlementRig, raised: CollectedAlerts
) -> None:
    rig = sqlite_rig
    alice = rig.open_account(DEAL)
    await rig.settle()
    rig.embedded.freeze_token_account(rig.custody, rig.address(alice))
    doomed = uuid4()
    rig.execute(c.TransferFunds(doomed, TREASURY_ID, alice, 3 * DEAL))

    await rig.settle()

    [alert] = raised.of(AlertKind.SETTLEMENT_FAILED)
    assert alert.fields["transfer_ids"] == str(doomed)
    assert alert.fields["signature"] and '"Custom":17' in str(alert.fields["error"])
    assert alert.fields["blocked_compensations"] == 0


async def test_a_reconciliation_with_findings_alerts_once_per_run(
    sqlite_rig: SettlementRig, raised: CollectedAlerts
) -> None:
    rig = sqlite_rig
    alice = rig.open_account(10 * DEAL)
    await rig.settle()
    assert (await rig.reconcile()).clean
    assert raised.of(AlertKind.RECONCILIATION_FINDING) == []
    rig.embedded.transfer_directly(
        rig.custody, rig.address(TREASURY_ID), rig.address(alice), 7 * DEAL
    )

    report = await rig.reconcile()

    [alert] = raised.of(AlertKind.RECONCILIATION_FINDING)
    assert alert.fields["findings"] == len(report.mismatches) + len(report.unmatched_signatures)
    assert alert.fields["mismatches"] == 2 and alert.fields["unmatched_signatures"] == 1
