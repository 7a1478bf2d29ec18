"""Decoding a stored event, as much as each consumer needs.

The read side never rebuilds aggregates and needs no domain event objects:
it reads fields. ``EventDecoder.fields`` turns a stored state into a plain
dict in which transcoded values keep their stored text (ids as 32-character
hex, times as ISO strings). That is several times cheaper than the mapper's
``to_domain_event`` (no object hook, no UUID or datetime objects per field),
which is what makes replaying a million events a matter of seconds. The
application's cipher and compressor, when configured, are still applied.

A fold that wants the library's objects (the settlement fold, which reads
few event types) gets them from ``domain_event``, which is the mapper's own
decoding (topic resolution, upcasting), so it sees what the application
sees.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent

from application.eventlog.field_types import check_field_types
from application.eventlog.reader import LogEvent


class EventDecoder:
    def __init__(self, mapper: Mapper[Any]) -> None:
        self._mapper = mapper
        self._cipher = mapper.cipher
        self._compressor = mapper.compressor
        self._transcoder = mapper.transcoder

    def _plain(self, state: bytes) -> bytes:
        if self._cipher is not None:
            state = self._cipher.decrypt(state)
        if self._compressor is not None:
            state = self._compressor.decompress(state)
        return state

    def fields(self, state: bytes, topic: str | None = None) -> dict[str, Any]:
        """The event's fields; transcoded values as their stored text. With
        the ``topic``, each field's type is checked against the event class's
        annotation (WrongFieldType): a value that parses but is of the wrong
        type is a damaged row, not data."""
        data = orjson.loads(self._plain(state))
        for key, value in data.items():
            if type(value) is dict:
                data[key] = value.get("_data_", value)
        if topic is not None:
            check_field_types(topic, data)
        return data

    def timestamp(self, state: bytes) -> str:
        """The event's stamp as stored (ISO text): its commit's time."""
        value = orjson.loads(self._plain(state))["timestamp"]
        return value.get("_data_", value) if type(value) is dict else value

    def full(self, state: bytes) -> dict[str, Any]:
        """The event's fields with ids and times as Python objects (for the
        audit API, where a few events are read, not millions)."""
        return dict(self._transcoder.decode(self._plain(state)))

    def domain_event(self, event: LogEvent) -> Any:
        """The library's domain event object, as ``Application`` would read it."""
        stored = StoredEvent(UUID(event.originator_id), event.version, event.topic, event.state)
        return self._mapper.to_domain_event(stored)
