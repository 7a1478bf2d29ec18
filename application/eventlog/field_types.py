"""The stored types of a domain event's fields, read from its annotations.

``EventDecoder.fields`` reads plain JSON without the mapper's object hook
(replay speed), so a value of the wrong type that still parses
(``"kind": 5`` where the class says ``kind: str``) used to reach the read
models and showed only as a mismatch far from its row. Checking each field
present against its annotation, as stored (ids and times are text), makes
such a row undecodable at its own position. Annotations with no simple
stored form (enums, containers) are not checked here."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from functools import cache
from uuid import UUID

from eventsourcing.utils import resolve_topic

from domain.provenance import REQUEST_ID, REQUESTED_BY

STORED_AS: dict[object, tuple[type, ...]] = {
    int: (int,), str: (str,), bool: (bool,), UUID: (str,), datetime: (str,),
}
"""Python type of a JSON value per annotation (bool is not an int here)."""

Check = tuple[str, tuple[type, ...], bool]

_PROVENANCE: tuple[Check, ...] = ((REQUESTED_BY, (str,), True), (REQUEST_ID, (str,), True))
"""Who asked (``domain.provenance``): on every event since it was
recorded, declared by none, so checked for every topic here."""


class WrongFieldType(TypeError):
    """A stored field whose value is not of its annotated type."""


def check_field_types(topic: str, data: dict[str, typing.Any]) -> None:
    """Raise WrongFieldType for the first field present whose stored value
    does not have its annotated type (missing fields are the handler's)."""
    for name, allowed, optional in _checks(topic):
        if name not in data:
            continue
        value = data[name]
        if value is None and optional:
            continue
        if type(value) not in allowed:
            raise WrongFieldType(f"field {name!r} holds a {type(value).__name__}, "
                                 f"not {'/'.join(t.__name__ for t in allowed)}")


@cache
def _checks(topic: str) -> tuple[Check, ...]:
    try:
        hints = typing.get_type_hints(resolve_topic(topic))
    except Exception:  # an unknown topic is reported by its consumer
        return _PROVENANCE
    found = []
    for name, hint in hints.items():
        allowed, optional = _stored(hint)
        if allowed and not name.startswith("_"):
            found.append((name, allowed, optional))
    return (*found, *_PROVENANCE)


def _stored(hint: object) -> tuple[tuple[type, ...], bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1:
            return STORED_AS.get(rest[0], ()), type(None) in args
        return (), False
    return STORED_AS.get(hint, ()), False
