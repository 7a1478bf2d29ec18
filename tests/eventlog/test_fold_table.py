"""A fold finds its handler through the library's topic resolution, so a
renamed event class (its old topic registered as an alias) still reaches its
handler, and a stored event the fold does not know stops it, by name."""

from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.utils import register_topic

from application.eventlog.fold_table import FoldTable, UnknownEvent
from application.eventlog.reader import LogEvent
from domain.transfer import Transfer
from projections.ledger_fold import FoldState, LedgerFold, keys_for


class Renamed:
    """Stands for an event class whose module or name changed."""


class LeftOut:
    pass


class Unlisted:
    pass


def handlers() -> FoldTable[str]:
    table: FoldTable[str] = FoldTable("test fold")
    table.add(Renamed, "renamed handler")
    table.leave_out([LeftOut])
    return table


def test_an_old_topic_registered_as_an_alias_reaches_the_renamed_class_handler() -> None:
    register_topic("tests.eventlog.old_module:OldName", Renamed)
    assert handlers().for_topic("tests.eventlog.old_module:OldName") == "renamed handler"
    assert handlers().for_topic(f"{__name__}:Renamed") == "renamed handler"


def test_an_event_left_out_has_no_handler_and_an_unknown_one_stops_the_fold() -> None:
    assert handlers().for_topic(f"{__name__}:LeftOut") is None
    with pytest.raises(UnknownEvent, match="Unlisted is neither handled nor left out"):
        handlers().for_topic(f"{__name__}:Unlisted")
    with pytest.raises(UnknownEvent, match="no event class answers to topic"):
        handlers().for_topic("domain.transfer:Transfer.NoSuchEvent")


def test_the_read_model_fold_follows_an_alias_and_names_an_unknown_topics_position() -> None:
    register_topic("legacy.ledger:Transfer.Captured", Transfer.Captured)
    transfer = uuid4().hex
    captured = LogEvent(7, transfer, 2, "legacy.ledger:Transfer.Captured", b"{}")
    assert keys_for([captured]).holds == {transfer}
    debit = LogEvent(8, uuid4().hex, 3, "domain.account:Account.Debited", b"{}")
    assert keys_for([debit]).accounts == {debit.originator_id}
    unknown = LogEvent(9, transfer, 3, "legacy.ledger:Transfer.Teleported", b"{}")
    assert keys_for([unknown]) == keys_for([])
    changes = LedgerFold(FoldState(), decoder=None).apply([unknown])  # type: ignore[arg-type]
    assert changes.violations == [
        "position 9: read-model fold: no event class answers to topic "
        "'legacy.ledger:Transfer.Teleported'"
    ]
