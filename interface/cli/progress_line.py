"""A one-line progress report on stderr for long CLI work (replay, rebuild,
catch-up): position reached, of how many, and events per second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    def __init__(self, label: str, total: int, *, stream: TextIO | None = None,
                 every_s: float = 0.5) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.started = time.monotonic()
        self._shown = 0.0
        self._position = 0

    def __call__(self, position: int) -> None:
        self._position = position
        now = time.monotonic()
        if now - self._shown >= self.every_s:
            self._shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        share = min(1.0, self._position / self.total)
        bar = "#" * int(share * 30)
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {self._position:,}/{self.total:,} "
            f"{self._position / elapsed:,.0f} ev/s"
        )
        self.stream.flush()

    def done(self) -> None:
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()
