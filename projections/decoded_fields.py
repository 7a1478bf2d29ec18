"""Decoded fields beside a stored event, for the raw audit listing.

The listing shows each stored event's state exactly as stored (auditors and
proofs need the stored values: amounts in base units, times as the store
wrote them). Beside it, ``decoded`` restates what a reader would otherwise
convert by hand, in the API's own words: every amount field as an exact
decimal string of DEAL, every time in RFC 3339 with ``Z``. Nothing is
decoded that is not in the stored state, and the stored state is never
changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.amounts import format_amount

AMOUNT_FIELDS = frozenset({
    "amount", "balance_after", "released", "source_balance_after",
    "destination_balance_after", "available_after", "token_cost", "expected", "actual",
    "change",
})
"""The stored events' fields that hold base units (``domain``'s events:
``Account``, ``Transfer``, ``PriceSchedule``, ``Finding``); a test walks the
event classes and names any ``int`` field in neither this set nor
``COUNT_FIELDS``."""
COUNT_FIELDS = frozenset({
    "sequence", "position", "tree_size", "last_valid_block_height", "slot", "rule_version",
    "rule_position", "checked_accounts", "checked_signatures", "mismatches",
    "unmatched_signatures", "findings_total", "originator_version",
})
"""Stored ``int`` fields that are counts, positions or chain numbers, not money."""


def zulu(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as every time the API answers."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decoded_fields(state: dict[str, Any]) -> dict[str, str | None]:
    """The stored state's amounts (decimal DEAL) and times (``Z``), by field."""
    decoded: dict[str, str | None] = {}
    for name, value in state.items():
        if name in AMOUNT_FIELDS and (value is None or type(value) is int):
            decoded[name] = None if value is None else format_amount(value)
        elif isinstance(value, datetime):
            decoded[name] = zulu(value)
    return decoded
