"""Ledger ids: derived, version 8, apart from every id a client may choose."""

from __future__ import annotations

from uuid import NAMESPACE_DNS, uuid1, uuid4, uuid5

import pytest

from domain.errors import InvalidRequest
from domain.ids import check_client_id, is_ledger_id, ledger_id, legacy_ledger_id


def test_a_ledger_id_is_deterministic_version_8_and_not_the_legacy_uuid5():
    derived = ledger_id(NAMESPACE_DNS, "name")
    assert derived == ledger_id(NAMESPACE_DNS, "name") != ledger_id(NAMESPACE_DNS, "other")
    assert derived.version == 8 and is_ledger_id(derived)
    legacy = legacy_ledger_id(NAMESPACE_DNS, "name")
    assert legacy == uuid5(NAMESPACE_DNS, "name") != derived
    assert derived.int ^ legacy.int == (8 ^ 5) << 76  # only the version differs


@pytest.mark.parametrize("chosen", [uuid4(), uuid1(), uuid5(NAMESPACE_DNS, "x")])
def test_clients_keep_every_other_version(chosen):
    assert not is_ledger_id(chosen)
    assert check_client_id(chosen, "transfer_id") == chosen


def test_a_client_id_of_version_8_or_a_well_known_id_is_refused_naming_the_field():
    with pytest.raises(InvalidRequest, match="hold_id .* version 8"):
        check_client_id(ledger_id(NAMESPACE_DNS, "x"), "hold_id")
    well_known = uuid4()
    with pytest.raises(InvalidRequest, match="well-known"):
        check_client_id(well_known, "account_id", frozenset({well_known}))
