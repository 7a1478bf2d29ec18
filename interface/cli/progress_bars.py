"""Progress of long CLI work (replay, rebuild, catch-up) through tqdm: a bar
on stderr only when stderr is a terminal, never drawn into a pipe or a log
file. The log grows while it is read, so a position past the total raises
the total instead of overshooting it."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Called with the log position reached; ``done()`` closes the bar."""

    def __init__(self, label: str, total: int | None, *, unit: str = "ev",
                 stream: TextIO | None = None) -> None:
        """``total`` None: a count without a bar (the end is not known)."""
        stream = stream or sys.stderr
        self.bar = tqdm(total=None if total is None else max(total, 0), desc=label, unit=unit,
                        file=stream, disable=not stream.isatty(), dynamic_ncols=True)

    def __call__(self, position: int) -> None:
        if self.bar.disable:
            return
        if self.bar.total is not None and position > self.bar.total:
            self.bar.total = position
        self.bar.update(position - self.bar.n)

    def done(self) -> None:
        self.bar.close()
