"""Background daemons beside the request path: work a ledger process does
on its own, on a timer, never on a caller's behalf.

- ``background``: the thread helper every daemon here runs on (the settler,
  an async process manager, runs in its own thread: ``settlement.worker``).
- ``hold_expiry``: records the expiry of holds that are due.
- ``health_watch``: raises an alert when the projection stalls.
- ``suspicious_activity``: watches committed batches for the patterns the
  README's security section lists, off the hot path.
"""
