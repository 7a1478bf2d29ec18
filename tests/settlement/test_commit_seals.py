"""Database access alone must not move real tokens: a consistent forged
mint appended by direct SQL while the service is down is refused by the
projector, the settler (nothing minted on chain) and the audit, each naming
its position; seals made with an earlier key still check after a rotation."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from application.alerts import AlertKind
from application.eventlog.seal_check import UnauthenticatedEvent
from application.eventlog.seals import SealKey, SealKeys
from application.settlement.anchoring import AnchorConfig, AnchorProcess
from projections.audit_replay import AuditReplay
from projections.runtime import ReadSide
from tests.settlement.conftest import DEAL, FAST_RETRY, SettlementRig
from tests.support.raw_events import RawEvents
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio

OLD_KEY = SealKey("2026-01", bytes(range(32)))
NEW_KEY = SealKey("2026-07", bytes(range(32, 64)))


def forge_copy_of_commit(rig: SettlementRig, store: StoreConfig, first: int, last: int) -> int:
    """Append, with plain SQL, a copy of the commit ``first..last``
    under a new transfer id and the next account versions: a mint as the
    service would have written it, minus the seal. Returns its first position."""
    log = rig.ledger.app.event_log
    forged_at = log.head() + 1
    events = log.read(first - 1, last - first + 1)
    transfer_hex = events[0].originator_id
    forged_hex = uuid4().hex
    raw = RawEvents(rig.ledger, store)
    for event in events:
        is_transfer = event.originator_id == transfer_hex
        originator = forged_hex if is_transfer else event.originator_id
        version = event.version if is_transfer else _latest_version(log, event) + 1
        state = event.state.replace(transfer_hex.encode(), forged_hex.encode())
        state = state.replace(str(uuid_of(transfer_hex)).encode(), str(uuid_of(forged_hex)).encode())
        originator_value = originator if store.kind == "sqlite" else uuid_of(originator)
        raw.execute("INSERT INTO {t} (originator_id, originator_version, topic, state) "
                    "VALUES (%s, %s, %s, %s)", (originator_value, version, event.topic, state))
    return forged_at


async def anchor(rig: SettlementRig) -> None:
    config = AnchorConfig(every_events=1, poll_interval_s=0.005, retry=FAST_RETRY)
    await AnchorProcess(writer=rig.ledger.writer, app=rig.ledger.app, chain=rig.chain,
                        config=config).run_until_idle()


def _latest_version(log, event) -> int:
    return log.read_aggregate(uuid_of(event.originator_id), 0, 10_000)[-1].version


def uuid_of(hex_id: str):
    from uuid import UUID

    return UUID(hex_id)


async def test_a_forged_mint_is_refused_everywhere(store: StoreConfig, tmp_path, raised) -> None:
    rig = SettlementRig(store, tmp_path)
    try:
        genesis_end = rig.ledger.app.event_log.head()  # the rig's genesis, before seals
        rig.ledger.app.use_seal_keys(SealKeys([OLD_KEY]), start_at=genesis_end)
        account = rig.open_account()
        rig.ledger.app.use_seal_keys(SealKeys([OLD_KEY, NEW_KEY]))  # rotated: old seals still check
        await forged_mint_is_refused(rig, store, account, raised)
    finally:
        await rig.close()


async def test_by_default_a_forged_mint_is_refused_everywhere(
    store: StoreConfig, tmp_path, raised,
) -> None:
    """No key configured: the ledger opened as every process opens it seals
    with the key it generated in the data dir, from its genesis on."""
    from interface.wiring.seal_keys import open_ledger

    rig = SettlementRig(store, tmp_path, app=open_ledger(store.settings))
    try:
        assert rig.ledger.app.event_log.start_seal().last == 0
        await forged_mint_is_refused(rig, store, rig.open_account(), raised)
    finally:
        await rig.close()


async def forged_mint_is_refused(rig: SettlementRig, store: StoreConfig, account, raised) -> None:
    """A copy of a settled mint appended by SQL: the settler mints nothing,
    the projector stops before it and the audit names it, by position."""
    mint_id = uuid4()
    rig.execute(c.Mint(mint_id, account, 7 * DEAL))
    first = rig.ledger.app.event_log.position_of(mint_id, 1)
    assert first is not None
    last = rig.ledger.app.event_log.head()
    await anchor(rig)  # covers what was written before seals, if anything
    await rig.settle()
    supply = rig.chain_supply()

    forged_at = forge_copy_of_commit(rig, store, first, last)
    await rig.restart()

    with pytest.raises(UnauthenticatedEvent) as settler_refused:
        await rig.settle()
    assert settler_refused.value.position == forged_at
    assert rig.chain_supply() == supply
    assert await rig.chain_balance(account) == 7 * DEAL

    read_side = ReadSide(rig.ledger.app, store.env)
    told: list[int | None] = []
    read_side.projector.on_refused = lambda position, _what: told.append(position)
    try:
        with pytest.raises(UnauthenticatedEvent) as projector_refused:
            read_side.projector.rebuild()
        assert projector_refused.value.position == forged_at
        assert told == [forged_at]  # the wiring raises projection_stalled with it
        assert read_side.store.position() == forged_at - 1
        report = AuditReplay(read_side.log, read_side.decoder, read_side.store).run()
    finally:
        read_side.close()
    named = [m for m in report.mismatches if m.model == "event_log"]
    assert [m.key for m in named] == [f"position {forged_at}"], report.mismatches
    alerts = raised.of(AlertKind.UNAUTHENTICATED_EVENT)
    assert alerts and {a.fields["position"] for a in alerts} == {forged_at}


async def test_a_log_without_keys_reads_as_before(store: StoreConfig, tmp_path) -> None:
    """Seal checks are off for an application given no keys (as the tests'
    own ledgers are; every process of the service has keys): the same
    forgery is not caught, which is why every process seals."""
    rig = SettlementRig(store, tmp_path)
    try:
        account = rig.open_account()
        mint_id = uuid4()
        rig.execute(c.Mint(mint_id, account, 7 * DEAL))
        first = rig.ledger.app.event_log.position_of(mint_id, 1)
        forge_copy_of_commit(rig, store, first, rig.ledger.app.event_log.head())
        await rig.restart()
        await rig.settle()
        assert rig.chain_supply() >= 14 * DEAL
    finally:
        await rig.close()
