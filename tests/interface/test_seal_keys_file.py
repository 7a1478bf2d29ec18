"""DEALS_COMMIT_KEYS_FILE: read as a secret file (private, never shown),
and a ledger opened with it seals every commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interface.wiring.seal_keys import open_ledger
from interface.wiring.settings import Settings, SettingsError

SECRET = "ab" * 32


def keys_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "commit-keys"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_ledger_opened_with_the_file_seals_its_commits(tmp_path: Path) -> None:
    from uuid import uuid4

    from application import commands as c
    from application.write.processor import CommandProcessor

    settings = Settings(data_dir=tmp_path / "var",
                        commit_keys_file=keys_file(tmp_path, f"k1:{SECRET}\n"))
    app = open_ledger(settings)
    try:
        CommandProcessor(app).process([c.OpenAccount(uuid4())])
        seals = app.event_log.seals_from(0, 10)
        assert [seal.key_id for seal in seals] == ["k1", "k1"]  # the start, the commit
        assert seals[0].is_start and not seals[1].is_start
    finally:
        app.close()


@pytest.mark.parametrize(("text", "mode", "said"), [
    (f"k1:{SECRET}\n", 0o644, "must not be accessible by group or others"),
    (f"k1:{SECRET[:20]}\n", 0o600, "at least 32 bytes"),
])
def test_a_file_that_cannot_be_used_is_refused_without_its_content(
    tmp_path: Path, text: str, mode: int, said: str,
) -> None:
    settings = Settings(data_dir=tmp_path / "var",
                        commit_keys_file=keys_file(tmp_path, text, mode))
    with pytest.raises(SettingsError) as refused:
        open_ledger(settings)
    assert said in str(refused.value) and "DEALS_COMMIT_KEYS_FILE" in str(refused.value)
    assert SECRET[:16] not in str(refused.value)


def test_seals_turned_on_for_a_ledger_with_events_need_its_head_named(tmp_path: Path) -> None:
    from uuid import uuid4

    from application import commands as c
    from application.write.event_store import LedgerApplication
    from application.write.processor import CommandProcessor

    plain = Settings(data_dir=tmp_path / "var")
    app = LedgerApplication(plain.eventsourcing_env())
    CommandProcessor(app).process([c.OpenAccount(uuid4())])
    head = app.event_log.head()
    app.close()
    keyed = plain.replace(commit_keys_file=keys_file(tmp_path, f"k1:{SECRET}\n"))

    with pytest.raises(SettingsError, match=f"DEALS_COMMIT_SEALS_FROM={head}"):
        open_ledger(keyed)
    app = open_ledger(keyed.replace(commit_seals_from=head))
    try:
        CommandProcessor(app).process([c.OpenAccount(uuid4())])
        assert app.event_log.start_seal().last == head
    finally:
        app.close()


def test_a_fresh_service_seals_with_a_key_it_generates_privately(tmp_path: Path) -> None:
    """No DEALS_COMMIT_KEYS_FILE: the first start generates the key in the
    data dir (0600, the dir 0700), seals genesis on, and never logs it."""
    import stat

    from interface.wiring.seal_keys import COMMIT_KEYS_FILE_NAME
    from interface.wiring.service import LedgerService

    settings = Settings(data_dir=tmp_path / "var")
    with LedgerService(settings) as service:
        service.start(projections=False, settlement=False)
        log = service.app.event_log
        start, head = log.start_seal(), log.head()
        latest = log.seal_before(head + 1)
    key_file = settings.data_dir / COMMIT_KEYS_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    key_id = key_file.read_text().split(":")[0]
    assert start is not None and start.last == 0 and start.key_id == key_id
    assert head > 0 and latest is not None and latest.last == head  # genesis is sealed
    app = open_ledger(settings)  # the next start reads the same key
    app.close()
    assert key_file.read_text().split(":")[0] == key_id


def test_an_upgraded_ledger_begins_sealing_at_its_head(tmp_path: Path) -> None:
    """A ledger written before seals, opened with no key: the key is
    generated and sealing begins at the head, recorded at once (a restart
    before any command finds it)."""
    from uuid import uuid4

    from application import commands as c
    from application.write.event_store import LedgerApplication
    from application.write.processor import CommandProcessor

    settings = Settings(data_dir=tmp_path / "var")
    old = LedgerApplication(settings.eventsourcing_env())
    CommandProcessor(old).process([c.OpenAccount(uuid4())])
    head = old.event_log.head()
    old.close()
    open_ledger(settings).close()
    app = open_ledger(settings)
    try:
        assert app.event_log.start_seal().last == head
        CommandProcessor(app).process([c.OpenAccount(uuid4())])
        assert app.event_log.seal_before(head + 100).last == app.event_log.head()
    finally:
        app.close()


def test_a_sealed_log_is_refused_without_its_key(tmp_path: Path) -> None:
    """The key file gone, or another host's generated key: refused at
    start, saying that every process needs the same key file."""
    from interface.wiring.seal_keys import COMMIT_KEYS_FILE_NAME

    settings = Settings(data_dir=tmp_path / "var")
    open_ledger(settings).close()
    key_file = settings.data_dir / COMMIT_KEYS_FILE_NAME
    key_file.unlink()
    with pytest.raises(SettingsError, match="has no commit seal key"):
        open_ledger(settings)
    assert not key_file.exists()  # no key generated past the seals
    other = settings.replace(commit_keys_file=keys_file(tmp_path, f"other:{SECRET}\n"))
    with pytest.raises(SettingsError, match="same key file") as refused:
        open_ledger(other)
    assert SECRET[:16] not in str(refused.value)


def test_rotating_the_generated_key_keeps_the_old_seals_checking(tmp_path: Path) -> None:
    """docs/operations.md "Commit seals": append a line to the key file and
    restart; the new key seals, the old one still checks what it sealed."""
    from uuid import uuid4

    from application import commands as c
    from application.eventlog.seal_check import SealCheck
    from application.write.processor import CommandProcessor
    from interface.wiring.seal_keys import COMMIT_KEYS_FILE_NAME

    settings = Settings(data_dir=tmp_path / "var")
    app = open_ledger(settings)
    CommandProcessor(app).process([c.OpenAccount(uuid4())])
    app.close()
    key_file = settings.data_dir / COMMIT_KEYS_FILE_NAME
    old_id = key_file.read_text().split(":")[0]
    with key_file.open("a") as keys:
        keys.write(f"rotated:{'cd' * 32}\n")
    app = open_ledger(settings)
    try:
        CommandProcessor(app).process([c.OpenAccount(uuid4())])
        log = app.event_log
        assert [seal.key_id for seal in log.seals_from(0, 10)] == [old_id, old_id, "rotated"]
        check = SealCheck(log, log.seal_keys)
        assert [e.position for e in check.verified(log.read(0, 100))][-1] == log.head()
    finally:
        app.close()
    key_file.write_text(f"rotated:{'cd' * 32}\n")  # the old line dropped: refused at start
    with pytest.raises(SettingsError, match="same key file"):
        open_ledger(settings)
