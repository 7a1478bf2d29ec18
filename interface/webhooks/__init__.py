"""Subscribers' webhooks: business events POSTed to the URLs admins
subscribe, at least once and in order, off the request path.

- ``subscriptions``: subscriptions and their delivery log, in tables of their own
  beside the event store (configuration with a deletable signing secret has
  no place in the immutable log).
- ``delivery``: the background deliverer, one active process per ledger
  (a one-holder lock), signed as Standard Webhooks, retried with backoff.
- ``wiring``: builds the deliverer of one ``serve`` process from the settings.

The routes that manage subscriptions are ``interface.http.routers.webhooks``;
what an event says is ``projections.business_events``.
"""
