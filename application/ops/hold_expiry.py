"""The hold-expiry sweeper: releases holds whose time has passed.

Expiry needs a writer to record it (HoldExpired on the hold and the release
on its account), but nothing happens at the moment a hold expires. So a
sweeper asks a source of due holds (the holds read model in the service)
every interval and sends one ExpireHold per due hold. Expiring is
idempotent and a hold captured or voided meanwhile is left alone, so two
sweepers (two processes) or a stale read model do no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from application import commands as c
from application.authority import SWEEPER
from application.ops.background import periodic
from application.write.processor import utc_now
from application.write.writer import CommandWriter
from domain.errors import LedgerError

logger = logging.getLogger(__name__)

DueHolds = Callable[[datetime, int], list[UUID]]
SWEEP_INTERVAL_S_DEFAULT = 0.5
HOLDS_PER_SWEEP_MAX = 1000


class HoldExpirySweeper:
    def __init__(
        self,
        writer: CommandWriter,
        due_holds: DueHolds,
        *,
        interval_s: float = SWEEP_INTERVAL_S_DEFAULT,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._writer = writer
        self._due_holds = due_holds
        self._clock = clock
        self._background = periodic("hold-expiry", interval_s, self.sweep,
                                    failure="hold expiry sweep failed; will retry", log=logger)

    def sweep(self) -> int:
        """Expire every hold due now; returns how many were expired."""
        due = self._due_holds(self._clock(), HOLDS_PER_SWEEP_MAX)
        futures = [self._writer.send(c.ExpireHold(hold_id), authority=SWEEPER) for hold_id in due]
        expired = 0
        for hold_id, future in zip(due, futures, strict=True):
            try:
                expired += not future.result().replayed
            except LedgerError as error:
                logger.info("hold %s not expired: %s", hold_id, error.code)
        return expired

    def start(self) -> HoldExpirySweeper:
        self._background.start()
        return self

    def stop(self) -> None:
        self._background.stop(timeout_s=5)
