"""DEAL amounts at the client's edge: ``decimal.Decimal`` in and out.

The wire carries exact decimal strings; a float cannot say 0.1 exactly, so
one is refused (TypeError) rather than rounded. Digits past the 8th are
not cut here either: the service refuses them (``InvalidAmountError``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

AmountIn = Decimal | int
"""What the client takes as an amount: a Decimal, or a whole number of DEAL."""


def amount_text(amount: AmountIn) -> str:
    """The wire form of an amount (``Decimal("0.10")`` -> ``"0.10"``)."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(
            f"amounts are decimal.Decimal (or int), not {type(amount).__name__}: "
            "a float cannot hold a DEAL amount exactly")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"an amount must be finite, not {value}")
    return format(value, "f")


def optional_amount_text(amount: AmountIn | None) -> str | None:
    return None if amount is None else amount_text(amount)


def decimal_of(text: Any) -> Decimal:
    """An amount the service answered, exactly."""
    if not isinstance(text, str):
        raise TypeError(f"the service answered an amount that is not a string: {text!r}")
    return Decimal(text)


def optional_decimal(text: Any) -> Decimal | None:
    return None if text is None else decimal_of(text)
