"""Commit seals on both stores: each commit's seal checks, and every way a
sealed log can be changed behind the service's back is refused at the
position of the commit it touches; old keys keep checking after a rotation."""

from __future__ import annotations

from uuid import UUID

import pytest

from application import commands as c
from application.alerts import AlertKind
from application.eventlog.seal_check import SealCheck, UnauthenticatedEvent
from application.eventlog.seals import SealKey, SealKeyError, SealKeys, commit_mac, start_mac
from application.write.sealing import SealsMissing
from domain.anchor import NO_PREVIOUS_ROOT
from tests.support.ledgers import LedgerHarness
from tests.support.raw_events import RawEvents
from tests.support.stores import StoreConfig

OLD = SealKey("old", b"\x01" * 32)
NEW = SealKey("new", b"\x02" * 32)


def whole_log(ledger: LedgerHarness, keys: SealKeys) -> list[int]:
    """Every position the check lets through, reading from the start."""
    log = ledger.app.event_log
    check = SealCheck(log, keys)
    passed: list[int] = []
    while True:
        events = check.verified(log.read(passed[-1] if passed else 0, 7))
        if not events:
            return passed
        passed.extend(event.position for event in events)


def record_anchor(ledger: LedgerHarness, position: int) -> None:
    """An anchor recorded in the log as covering ``position`` (never sent:
    the seal check reads only how far the anchors recorded reach)."""
    ledger.execute(c.RecordAnchor(1, position, position, "0" * 64, NO_PREVIOUS_ROOT,
                                  "0" * 32, "signature", 1, "dHg="))


@pytest.fixture
def sealed(store: StoreConfig):
    ledger = LedgerHarness(store.env)  # its genesis is written before seals
    before = ledger.open_account()
    start = ledger.app.event_log.head()
    ledger.app.use_seal_keys(SealKeys([OLD]), start_at=start)
    record_anchor(ledger, start)  # what came before seals is read once anchored
    ledger.open_account(funded=500)
    ledger.app.use_seal_keys(SealKeys([OLD, NEW]))
    ledger.open_account(funded=700)
    yield ledger, start, before
    ledger.close()


def test_every_event_passes_and_the_start_is_where_sealing_began(sealed) -> None:
    ledger, start, _ = sealed
    log = ledger.app.event_log
    assert whole_log(ledger, SealKeys([OLD, NEW])) == [e.position for e in log.read(0, 1000)]
    start_seal = log.start_seal()
    assert start_seal is not None and start_seal.last == start


def test_a_changed_byte_is_refused_at_its_commit(sealed, store: StoreConfig) -> None:
    ledger, start, _ = sealed
    target = ledger.app.event_log.head()
    raw = RawEvents(ledger, store)
    state = raw.state_at(target, ledger)
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s",
                (state.replace(b"}", b" }", 1), target))
    passed = whole_log_until_refused(ledger, SealKeys([OLD, NEW]))
    assert start < passed.refused <= target
    assert passed.refused == passed.last + 1


def test_a_removed_seal_is_refused(sealed, store: StoreConfig) -> None:
    ledger, start, _ = sealed
    seal = ledger.app.event_log.seals_from(start + 1, 1)[0]
    RawEvents(ledger, store).execute(
        "DELETE FROM " + seals_table(store) + " WHERE last_position = %s", (seal.last,))
    assert whole_log_until_refused(ledger, SealKeys([OLD, NEW])).refused == seal.first


def test_seals_of_a_key_no_longer_known_are_refused(sealed) -> None:
    """Rotation keeps the old lines: a process given only the new key
    refuses what the old one sealed (and says so), never accepts it."""
    ledger, start, _ = sealed
    with pytest.raises(UnauthenticatedEvent):
        whole_log(ledger, SealKeys([NEW]))


class Refused:
    def __init__(self, last: int, refused: int) -> None:
        self.last, self.refused = last, refused


def whole_log_until_refused(ledger: LedgerHarness, keys: SealKeys) -> Refused:
    log = ledger.app.event_log
    check = SealCheck(log, keys)
    last = 0
    while True:
        try:
            events = check.verified(log.read(last, 7))
        except UnauthenticatedEvent as refused:
            return Refused(last, refused.position)
        assert events, "nothing was refused"
        last = events[-1].position


def seals_table(store: StoreConfig) -> str:
    if store.kind == "sqlite":
        return "commit_seals"
    return f'"{store.env["POSTGRES_SCHEMA"]}".commit_seals'


def test_key_files_parse_and_never_show_a_secret() -> None:
    keys = SealKeys.parse(f"# rotated 2026-12\nold:{'01' * 32}\n\nnew:{'02' * 32}\n")
    assert keys.current.key_id == "new" and keys.get("old") == OLD
    assert "01" * 4 not in repr(keys) and "02" * 4 not in repr(keys.current)
    for bad in ("", "k:zz", f"k:{'01' * 16}", f":{'01' * 32}", f"k:{'01' * 32}\nk:{'02' * 32}"):
        with pytest.raises(SealKeyError) as refused:
            SealKeys.parse(bad)
        assert "01" * 8 not in str(refused.value)


def test_events_before_seals_are_read_up_to_the_start(store: StoreConfig) -> None:
    """An upgraded ledger keeps reading: what came before the recorded start
    needs no seal (nor an anchor yet); what comes after it does."""
    ledger = LedgerHarness(store.env)
    try:
        start = ledger.app.event_log.head()
        ledger.app.use_seal_keys(SealKeys([OLD]), start_at=start)
        ledger.open_account()
        assert whole_log(ledger, SealKeys([OLD]))[-1] == ledger.app.event_log.head()
    finally:
        ledger.close()


def test_with_the_seals_gone_only_what_an_anchor_covers_is_read(store: StoreConfig) -> None:
    ledger = LedgerHarness(store.env)
    try:
        start = ledger.app.event_log.head()
        ledger.app.use_seal_keys(SealKeys([OLD]), start_at=start)
        ledger.open_account()
        raw = RawEvents(ledger, store)
        raw.execute("DELETE FROM " + seals_table(store))
        with pytest.raises(UnauthenticatedEvent, match="no anchor covers it") as refused:
            whole_log(ledger, SealKeys([OLD]))
        assert refused.value.position == 1
        ledger.app.use_seal_keys(SealKeys([OLD]), start_at=ledger.app.event_log.head())
        record_anchor(ledger, start)
        raw.execute("DELETE FROM " + seals_table(store))
        assert whole_log_until_refused(ledger, SealKeys([OLD])).refused == start + 1
    finally:
        ledger.close()


def test_sealing_never_begins_after_events_the_operator_did_not_name(
    sealed, store: StoreConfig, raised,
) -> None:
    """The seals emptied and a forged event appended: the service's next
    commit would read the forgery as written before seals. It is refused
    instead (nothing committed), and so is the forgery."""
    ledger, start, _ = sealed
    raw = RawEvents(ledger, store)
    raw.execute("DELETE FROM " + seals_table(store))
    forged_at = ledger.app.event_log.head() + 1
    last = ledger.app.event_log.read(forged_at - 2, 1)[0]
    originator = last.originator_id if store.kind == "sqlite" else UUID(last.originator_id)
    raw.execute("INSERT INTO {t} (originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s)", (originator, last.version + 1, last.topic, last.state))
    with pytest.raises(Exception, match="internal error"):
        ledger.open_account()
    assert ledger.app.event_log.head() == forged_at
    (alert,) = raised.of(AlertKind.UNAUTHENTICATED_EVENT)
    assert alert.fields["position"] == forged_at
    assert whole_log_until_refused(ledger, SealKeys([OLD, NEW])).refused <= forged_at


def test_seals_missing_is_the_recorders_refusal() -> None:
    from application.write.sealing import seal_rows

    with pytest.raises(SealsMissing, match="sealing may begin only at position 3"):
        seal_rows(SealKeys([OLD]), None, 9, [], [], 3)


def test_macs_are_those_stored_seals_were_made_with() -> None:
    """Seals already stored must keep checking: the MACs of a fixed commit
    and start, as the first implementation (one ``HMAC.update`` per framed
    part) computed them, pin the framing and the key's use."""
    key = SealKey("k1", bytes(range(32)))
    events = [
        (7, "0123456789abcdef0123456789abcdef", 1, "domain.account:Account.Opened", b'{"a":1}'),
        (8, "fedcba9876543210fedcba9876543210", 12, "domain.transfer:Transfer.Recorded", b""),
    ]
    assert commit_mac(key, b"\x01" * 32, events).hex() == (
        "e23b5f2330a9e2190c12bd6621584f6ca2e7a1e36e4cbc75698c41d7acfbe86a")
    assert start_mac(key, 41).hex() == (
        "69e3fa08c483493b768032a8fd7f60f4b6efbf6753d38a2a97e63dabb2943776")
