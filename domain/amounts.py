"""DEAL amounts: int base units inside, exact decimal strings at the edges.

This is the one place where text becomes money and money becomes text. It
rejects anything it cannot represent exactly instead of rounding: a ledger
that rounds loses or invents tokens.
"""

from __future__ import annotations

import re

from domain.errors import InvalidAmount

DECIMALS = 8
UNITS_PER_DEAL = 10**DECIMALS
INITIAL_SUPPLY = 1_000_000_000 * UNITS_PER_DEAL
AMOUNT_MAX = INITIAL_SUPPLY
"""The single-amount limit: no one amount (a transfer, hold, fee, reward,
mint, burn, allowance) may exceed 1,000,000,000 DEAL, the initial supply.
Refused as ``invalid_amount``."""
SUPPLY_MAX = 10 * INITIAL_SUPPLY
"""The circulating-supply limit, 10,000,000,000 DEAL: a mint past it is
``supply_limit_exceeded``. 1e18 base units stays well inside the SPL token
program's u64 amounts, so every ledger balance is representable on chain."""

_TEXT_LENGTH_MAX = 32
_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def parse_amount(text: object, *, allow_zero: bool = False) -> int:
    """Parse a decimal DEAL string ("0.1", "1000") into base units.

    Only a JSON string is accepted: a JSON number has already been through a
    binary float in most clients, so its exact value is unknowable.
    """
    if not isinstance(text, str) or isinstance(text, bool):
        raise InvalidAmount("amount must be a decimal string such as \"0.1\", not a JSON number")
    _reject_malformed(text)
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmount(f"amount {text!r} is not a plain decimal number")
    units = _to_units(match.group("whole"), match.group("fraction") or "")
    return check_amount(units, allow_zero=allow_zero)


def check_amount(units: int, *, allow_zero: bool = False) -> int:
    """Validate an amount already in base units (the internal form)."""
    if type(units) is not int:
        raise InvalidAmount("amount must be an integer number of base units")
    if units < 0:
        raise InvalidAmount("amount must not be negative")
    if units == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if units > AMOUNT_MAX:
        raise InvalidAmount(
            f"amount exceeds the single-amount limit of {deal_text(AMOUNT_MAX)} DEAL"
        )
    return units


def format_amount(units: int) -> str:
    """Format base units as the shortest exact decimal string ("0.1", "-5")."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), UNITS_PER_DEAL)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{DECIMALS}d}".rstrip("0")


def deal_text(units: int) -> str:
    """Whole DEAL with thousands separators, for limits in messages
    ("1,000,000,000"); never an amount a client parses back."""
    whole, fraction = divmod(units, UNITS_PER_DEAL)
    if fraction:
        raise ValueError("deal_text is for whole-DEAL limits")
    return f"{whole:,}"


def _reject_malformed(text: str) -> None:
    """Name the specific mistake, so a caller can fix it from the message."""
    if text == "":
        raise InvalidAmount("amount is empty")
    if text != text.strip():
        raise InvalidAmount("amount must not carry leading or trailing whitespace")
    if len(text) > _TEXT_LENGTH_MAX:
        raise InvalidAmount(f"amount is longer than {_TEXT_LENGTH_MAX} characters")
    lowered = text.lower()
    if lowered.lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
        raise InvalidAmount("amount must be a finite number, not NaN or Infinity")
    if "e" in lowered:
        raise InvalidAmount("amount must not use exponent notation")
    if text.startswith("-"):
        raise InvalidAmount("amount must not be negative")
    if text.startswith("+"):
        raise InvalidAmount("amount must not carry a sign")


def _to_units(whole: str, fraction: str) -> int:
    if len(whole) > 1 and whole.startswith("0"):
        raise InvalidAmount("amount must not have leading zeros")
    if len(fraction) > DECIMALS:
        raise InvalidAmount(
            f"amount has {len(fraction)} fractional digits; DEAL has at most {DECIMALS}"
        )
    return int(whole) * UNITS_PER_DEAL + int(fraction.ljust(DECIMALS, "0") or "0")
