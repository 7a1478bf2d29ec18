"""Background daemons beside the request path: work a ledger process does
on its own, on a timer, never on a caller's behalf.

- ``background``: the one thread helper every daemon runs on.
- ``hold_expiry``: records the expiry of holds that are due.
- ``health_watch``: raises an alert when the projection stalls.
- ``suspicious_activity``: watches committed batches for the patterns the
  README's security section lists, off the hot path.
"""
