"""Webhook subscriptions (admin): create, list, delete, the delivery log, replay.

Delivery itself runs in the background (``interface.webhooks.delivery``);
these routes only read and write the subscriptions table, so none of them
waits on a receiver. A subscription's secret is answered once, when the
ledger generated it, and never again.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request, Response
from standardwebhooks import Webhook

from application.conflicts import fields_differ
from domain.errors import InvalidRequest
from interface.http.deps import IS_ADMIN, IdempotencyKey, in_thread
from interface.http.errors import NotFound
from interface.http.idempotency import REPLAYED_HEADER, check_key
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, refusals
from interface.http.routers.events import parse_types
from interface.http.schemas.events import (
    DeliveriesResponse,
    DeliveryItem,
    ReplayRequest,
    WebhookCreated,
    WebhookItem,
    WebhookRequest,
    WebhooksResponse,
)
from interface.webhooks.subscriptions import Subscription, WebhookStore
from interface.wiring.service import LedgerService
from projections.queries import PositionPastHead

SECRET_BYTES = 24
SECRET_BYTES_RANGE = (24, 64)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JsonRoute)


def _service(request: Request) -> LedgerService:
    service: LedgerService = request.app.state.service
    service.refuse_if_store_down()
    return service


def _store(request: Request) -> WebhookStore:
    return _service(request).webhooks.store


def checked_secret(secret: str | None) -> tuple[str, bool]:
    """The secret to sign with, and whether the ledger generated it."""
    if secret is None:
        return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode(), True
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        Webhook(secret)
    except Exception:
        raise InvalidRequest("secret: not whsec_ followed by base64") from None
    if not SECRET_BYTES_RANGE[0] <= len(key) <= SECRET_BYTES_RANGE[1]:
        raise InvalidRequest("secret: the key must be 24 to 64 bytes")
    return secret, False


def _start(service: LedgerService, after: int | None) -> int:
    head = service.read_side.events.head()
    if after is not None and after > head:
        raise PositionPastHead("after", after, head)
    return head if after is None else after


def _found(store: WebhookStore, webhook_id: UUID) -> Subscription:
    subscription = store.get(webhook_id)
    if subscription is None:
        raise NotFound(f"no webhook subscription {webhook_id}")
    return subscription


def _differing(found: Subscription, wanted: Subscription, secret_given: bool) -> list[str]:
    """The request's fields the stored subscription holds otherwise (named,
    never their values: the stored secret above all)."""
    fields = [name for name in ("url", "types") if getattr(found, name) != getattr(wanted, name)]
    return fields + ["secret"] if secret_given and found.secret != wanted.secret else fields


def _create(service: LedgerService, subscription: Subscription,
            generated: bool) -> Subscription | None:
    """Stores ``subscription``; answers the one stored before under its id
    (a repeat), refused when that one was made by another request."""
    store = service.webhooks.store
    try:
        store.add(subscription)
        return None
    except Exception:  # the id is taken (or the store failed: then it is not found)
        found = store.get(subscription.subscription_id)
        if found is None:
            raise
    differing = _differing(found, subscription, secret_given=not generated)
    if differing:
        raise fields_differ("webhook_id", found.subscription_id, differing)
    return found


@router.post("", status_code=201, response_model=WebhookCreated, dependencies=[IS_ADMIN],
             responses={200: REPLAYED, **refusals(409)},
             description="Subscribe a URL to business events (all types, or `types`), from "
                         "`after` (default: from now on). Deliveries are signed with `secret` "
                         "(Standard Webhooks); without one the ledger generates it and "
                         "answers it this once (a repeat answers null). Idempotent by "
                         "`webhook_id` (or the Idempotency-Key header): a repeat answers 200 "
                         "with Idempotent-Replayed: true.")
async def create_webhook(body: WebhookRequest, request: Request, response: Response,
                         key: IdempotencyKey):
    types = parse_types(",".join(body.types)) if body.types else None
    if body.types is not None and not body.types:
        raise InvalidRequest("types: name at least one type, or leave it out for every type")
    webhook_id = body.webhook_id or key or uuid4()
    check_key(key, "webhook_id", webhook_id, what="this subscription")
    secret, generated = checked_secret(body.secret)
    service = _service(request)
    start = await in_thread(_start, service, body.after)
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    subscription = Subscription(webhook_id, body.url, types, secret, start, created)
    earlier = await in_thread(_create, service, subscription, generated)
    if earlier is not None:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
        return WebhookCreated(**WebhookItem.of(earlier).model_dump(), secret=None)
    return WebhookCreated(**WebhookItem.of(subscription).model_dump(),
                          secret=secret if generated else None)


@router.get("", response_model=WebhooksResponse, dependencies=[IS_ADMIN],
            description="Every subscription (never its secret).")
async def list_webhooks(request: Request):
    found = await in_thread(_store(request).all)
    return WebhooksResponse(items=[WebhookItem.of(subscription) for subscription in found])


@router.delete("/{webhook_id}", response_model=WebhookItem, dependencies=[IS_ADMIN],
               responses=refusals(404),
               description="Stop delivering to a subscription and forget it and its log.")
async def delete_webhook(webhook_id: UUID, request: Request, key: IdempotencyKey):
    check_key(key, None, None, what="deleting a subscription")
    store = _store(request)
    subscription = await in_thread(_found, store, webhook_id)
    await in_thread(store.remove, webhook_id)
    return WebhookItem.of(subscription)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesResponse,
            dependencies=[IS_ADMIN], responses=refusals(404),
            description="The latest delivery attempts, newest first (each attempt, failed "
                        "ones included, with the receiver's status or the error).")
async def list_deliveries(webhook_id: UUID, request: Request,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    store = _store(request)
    await in_thread(_found, store, webhook_id)
    found = await in_thread(store.deliveries, webhook_id, limit)
    return DeliveriesResponse(items=[DeliveryItem.of(delivery) for delivery in found])


@router.post("/{webhook_id}/replay", response_model=WebhookItem, dependencies=[IS_ADMIN],
             responses=refusals(404),
             description="Deliver again, in order, every event of the subscription's types at "
                         "or after `from_position` (past the log's head: 422 "
                         "position_past_head). Receivers drop repeats by `webhook-id`.")
async def replay_webhook(webhook_id: UUID, body: ReplayRequest, request: Request,
                         key: IdempotencyKey):
    check_key(key, None, None, what="a replay (it sets a position: repeating it is harmless)")
    service = _service(request)
    store = service.webhooks.store
    await in_thread(_found, store, webhook_id)
    await in_thread(_start, service, body.from_position - 1)
    await in_thread(store.rewind, webhook_id, body.from_position - 1)
    return WebhookItem.of(await in_thread(_found, store, webhook_id))
