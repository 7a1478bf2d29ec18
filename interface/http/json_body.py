"""Request bodies are JSON, said so and meant so: the one way the API reads one.

Every route is a ``JsonRoute``. Before a route that takes a body runs:

- a non-empty body must come with ``Content-Type: application/json`` (a
  ``charset`` parameter may only say UTF-8): anything else, or none, is 415
  ``unsupported_media_type`` naming what was sent, instead of a validation
  error about "a valid dictionary" for text that was never read as JSON;
- the body must be UTF-8 (RFC 8259 section 8.1) and strict JSON: no
  ``NaN`` or ``Infinity``, and no object, at any depth (a batch's items
  included), with the same key twice. Python's parser (like orjson and
  most others) keeps the last of two keys silently, while a gateway or an
  auditor reading the same bytes may keep the first and see another
  request; so a repeated key is 400 ``bad_request`` naming the key;
- no string, key or value, at any depth, may hold a lone UTF-16 surrogate
  (``"\\ud800"``): Python's parser accepts the escape, but it is not Unicode
  text and cannot be encoded as UTF-8, so it would fail deep in the store
  (taking a group commit's other commands with it). It is 422
  ``invalid_request`` naming the field, for every field of every command.

The body is parsed once, here, and FastAPI validates what this returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from interface.http.errors import BadRequest, UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"
QUOTED_TEXT_LENGTH_MAX = 80
"""How much of a client's header or key a message repeats."""

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class JsonRoute(APIRoute):
    """An APIRoute whose body is read by ``JsonRequest``."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        takes_body = self.body_field is not None

        async def handle_json(request: Request) -> Response:
            json_request = JsonRequest(request.scope, request.receive)
            if takes_body:
                await json_request.require_json()
            return await handle(json_request)

        return handle_json


class JsonRequest(Request):
    async def require_json(self) -> None:
        """Raises ``UnsupportedMediaType`` for a body that is not declared JSON
        (and ``BadRequest`` when the client went away before sending it all:
        the answer goes nowhere, but nothing is mistaken for a bug)."""
        try:
            body = await self.body()
        except ClientDisconnect:
            raise BadRequest("the connection closed before the whole body arrived") from None
        if not body:
            return
        declared = self.headers.get("content-type")
        if declared is None:
            raise UnsupportedMediaType(
                f"the body has no Content-Type; send it as {JSON_MEDIA_TYPE}")
        if not is_json_media_type(declared):
            raise UnsupportedMediaType(
                f"Content-Type {quoted(declared)} is not {JSON_MEDIA_TYPE} (UTF-8); "
                f"send the body as {JSON_MEDIA_TYPE}")

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def is_json_media_type(declared: str) -> bool:
    message = Message()
    message["content-type"] = declared
    if message.get_content_type() != JSON_MEDIA_TYPE:
        return False
    charset = message.get_param("charset")
    return charset is None or str(charset).lower() in ("utf-8", "utf8")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; raises HTTPException(400) naming what is
    wrong (FastAPI passes an HTTPException through, where it would turn any
    other error into a generic one), json.JSONDecodeError for malformed
    text (FastAPI's own 400 with the position)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HTTPException(400, f"the body is not UTF-8 (byte {error.start})") from None
    value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    if _MAY_HOLD_SURROGATE.search(text):
        _refuse_lone_surrogates(value, ())
    return value


_MAY_HOLD_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
"""Only an escape can put a surrogate in a string (the body is UTF-8), so
bodies without one (nearly all) are not walked."""


def _refuse_lone_surrogates(value: Any, path: tuple[str, ...]) -> None:
    """Raises HTTPException(422) naming the first string that is not text."""
    if isinstance(value, str):
        if not is_unicode_text(value):
            where = ".".join(path) or "body"
            raise HTTPException(422, f"{where}: must not contain a lone UTF-16 surrogate")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key, path)
            _refuse_lone_surrogates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_lone_surrogates(item, (*path, str(index)))


def is_unicode_text(text: str) -> bool:
    """False for a string holding a lone surrogate (not encodable as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise HTTPException(400, f"a JSON object has the key {quoted(key)} more than once")
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs without a repeat")


def _no_constant(name: str) -> Any:
    raise HTTPException(400, f"{name} is not JSON (RFC 8259 has no such number)")


def quoted(text: str) -> str:
    """A client's text, safe and short, for a message."""
    shown = repr(text[:QUOTED_TEXT_LENGTH_MAX])
    return shown if len(text) <= QUOTED_TEXT_LENGTH_MAX else f"{shown}..."
