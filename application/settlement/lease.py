"""One active settler: the lease the settlement process holds while it works.

The interface supplies it (``interface.wiring.settler.lease_for``): one of the
log's one-active-holder locks (``application.eventlog.locks``), an exclusive
``flock`` on a file in the data dir on SQLite, a session advisory lock held
on a connection of its own on PostgreSQL. Either is dropped by the OS or the
server when its holder dies, so a standby settler takes over without
waiting for a timeout.

The lease keeps a second settler from doing the same work; it is not what
makes settlement safe. That is the compare-and-set of every settlement step
on the transfers (``domain.transfer``): a settler whose lease was lost
cannot record, and so cannot send, a submission another one replaced.
"""

from __future__ import annotations

from application.eventlog.locks import OneHolderLock

Lease = OneHolderLock
