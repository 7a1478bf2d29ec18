"""Field types shared by the schemas.

Amounts are parsed by domain.amounts, the one edge parser: a JSON number,
more than 8 decimals, zero, a negative or an exponent is refused with
``invalid_amount``, never rounded. Times are parsed by domain.rfc3339, the
one time parser: RFC 3339 strings with an offset, kept as aware datetimes
in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from domain.amounts import DECIMALS, parse_amount
from domain.errors import InvalidRequest, LedgerError
from domain.pricing import SERVICE_TYPES, check_service_type
from domain.rfc3339 import EXAMPLE, TIME_TEXT_LENGTH_MAX, parse_time
from domain.wallet import ADDRESS_LENGTH_MAX, validate_wallet_address

AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]{1,8})?$"
SIGNED_AMOUNT_PATTERN = r"^-?[0-9]+(\.[0-9]{1,8})?$"


def _parse(parser, value: Any, **kwargs: Any) -> Any:
    try:
        return parser(value, **kwargs)
    except LedgerError as error:
        raise PydanticCustomError(error.code, error.message) from None


def _amount(value: Any) -> int:
    return _parse(parse_amount, value)


def _amount_or_zero(value: Any) -> int:
    return _parse(parse_amount, value, allow_zero=True)


def _amount_schema(minimum: str) -> dict[str, Any]:
    return {
        "type": "string", "pattern": AMOUNT_PATTERN, "maxLength": 32,
        "description": f"a decimal number of DEAL, at least {minimum}, at most "
                       f"{DECIMALS} fractional digits, as a JSON string",
        "examples": ["0.1"],
    }


Amount = Annotated[int, PlainValidator(_amount), WithJsonSchema(_amount_schema("0.00000001"))]
"""A positive amount in base units, from a decimal string."""

AmountOrZero = Annotated[
    int, PlainValidator(_amount_or_zero), WithJsonSchema(_amount_schema("0"))
]
"""An amount that may be zero (an allowance of "0" revokes it)."""

def _service_type(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "service_type must be a string")
    return _parse(check_service_type, value)


ServiceType = Annotated[
    str,
    PlainValidator(_service_type),
    WithJsonSchema({"type": "string", "enum": list(SERVICE_TYPES)}),
]


POSITION_MAX = 2**63 - 1
"""The largest log position the stores can hold (a signed 64-bit integer):
a larger one in a request is refused as invalid, never passed to a driver."""

def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        # A JSON number is a value of the wrong type (400), as for every field.
        raise PydanticCustomError("datetime_type", "must be an RFC 3339 time string")
    return _parse(parse_time, value)


Timestamp = Annotated[datetime, PlainValidator(_time), WithJsonSchema({
    "type": "string", "format": "date-time", "maxLength": TIME_TEXT_LENGTH_MAX,
    "description": "an RFC 3339 date-time with an offset (section 5.6)",
    "examples": [EXAMPLE],
})]
"""An RFC 3339 time with an offset, as an aware datetime in UTC
(domain.rfc3339, the one parser of times)."""

def _address_text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "address must be a string")
    if len(value) > ADDRESS_LENGTH_MAX:
        # Refused before anything else looks at it, with the domain's own
        # message for the limit; solders decides the rest in the handler.
        _parse(validate_wallet_address, value)
    return value


AddressText = Annotated[str, PlainValidator(_address_text), WithJsonSchema(
    {"type": "string", "maxLength": ADDRESS_LENGTH_MAX,
     "description": "a base58 Solana public key (ed25519)"}
)]
"""A wallet address as given, bounded in length; validated by the domain."""

Reason = Annotated[str, Field(max_length=500, description="free text, at most 500 characters")]


AmountText = Annotated[str, Field(pattern=AMOUNT_PATTERN, examples=["0.1"])]
SignedAmountText = Annotated[str, Field(pattern=SIGNED_AMOUNT_PATTERN, examples=["-0.1"])]


PointInTime = Annotated[str | None, Query(
    max_length=TIME_TEXT_LENGTH_MAX,
    description="a log position (an integer) or an RFC 3339 time with an offset",
    examples=[EXAMPLE, "1200"],
)]


def parse_point_in_time(text: str | None) -> tuple[int | None, datetime | None]:
    """``at``: a log position (digits only) or an RFC 3339 time."""
    if text is None:
        return None, None
    if text.isascii() and text.isdigit():
        if int(text) > POSITION_MAX:
            raise InvalidRequest(f"at: a log position is at most {POSITION_MAX}")
        return int(text), None
    return None, parse_time(text, "at")
