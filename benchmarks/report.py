"""What ``deals-ledger bench`` prints: one row per scenario with its figure,
the baseline measured in the same run, their ratio, latency percentiles and
the issue's target; and a progress bar on stderr while it runs."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass
class Figure:
    scenario: int
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline_value: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    digits: int = 0

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


def _number(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def render(figures: list[Figure]) -> str:
    header = (f"{'#':>2} {'scenario':<44} {'figure':>18} {'baseline (same run)':<44} "
              f"{'ratio':>6} {'p50 ms':>8} {'p99 ms':>8}  target / met")
    lines = [header, "-" * len(header)]
    for f in figures:
        baseline = f"{f.baseline_name} {_number(f.baseline_value)}" if f.baseline_name else ""
        met = {True: "met", False: "MISSED", None: ""}[f.met]
        lines.append(
            f"{f.scenario:>2} {f.name:<44} {_number(f.value, f.digits) + ' ' + f.unit:>18} {baseline:<44} "
            f"{_number(f.ratio, 2):>6} {_number(f.p50_ms, 1):>8} {_number(f.p99_ms, 1):>8}  "
            f"{f.target} {met}".rstrip()
        )
        if f.note:
            lines.append(f"{'':>3} {f.note}")
    return "\n".join(lines)


class ProgressBar:
    """Steps done of the run's total, the step running and the time spent."""

    def __init__(self, total_steps: int, stream: TextIO | None = None) -> None:
        self.total = max(total_steps, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 24)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r\x1b[K[{bar:<24}] {self.done}/{self.total} {elapsed:6.0f} s  {label}")
        self.stream.flush()
        self.done += 1

    def finish(self) -> None:
        self.done = self.total
        self.step("done")
        self.stream.write("\n")
        self.stream.flush()
