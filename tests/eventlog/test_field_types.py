"""A stored field whose value parses but is not of the type the event class
annotates is a damaged row: the decoder refuses it with WrongFieldType."""

from __future__ import annotations

import pytest

from application.eventlog.field_types import WrongFieldType, check_field_types
from domain.account import Account

OPENED = f"{Account.Opened.__module__}:{Account.Opened.__qualname__}"
HOLD = f"{Account.HoldPlaced.__module__}:{Account.HoldPlaced.__qualname__}"
STAMP = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("kind", [5, True, None, ["user"]])
def test_a_wrong_type_is_refused(kind):
    with pytest.raises(WrongFieldType, match="'kind'"):
        check_field_types(OPENED, {"kind": kind, "timestamp": STAMP})


def test_the_stored_forms_pass():
    check_field_types(OPENED, {"kind": "user", "timestamp": STAMP})
    check_field_types(HOLD, {"hold_id": "ab" * 16, "amount": 3, "expires_at": None,
                             "timestamp": STAMP})


@pytest.mark.parametrize("fields", [{"amount": "3"}, {"amount": True}, {"hold_id": 7},
                                    {"timestamp": 0}])
def test_ids_amounts_and_times_have_their_stored_types(fields):
    with pytest.raises(WrongFieldType):
        check_field_types(HOLD, fields)
