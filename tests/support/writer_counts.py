"""The command writer's fairness counters (``application.write.writer_metrics``),
read from the process's Prometheus registry as differences from a start, so
a test asserts what its own commands caused."""

from __future__ import annotations

from prometheus_client import REGISTRY

from application.write.attempts import LOST_COMMIT, REFUSED_MIDWAY

_SAMPLES = {
    "redecides_refused_midway": ("deals_ledger_writer_redecides_total", {"cause": REFUSED_MIDWAY}),
    "redecides_lost_commit": ("deals_ledger_writer_redecides_total", {"cause": LOST_COMMIT}),
    "redeciding_refusals": ("deals_ledger_writer_redeciding_refusals_total", {}),
    "sent_on": ("deals_ledger_writer_sent_on_total", {}),
    "turns": ("deals_ledger_writer_turns_total", {}),
    "batch_chunks": ("deals_ledger_writer_batch_chunks_total", {}),
    "answered": ("deals_ledger_writer_command_retries_count", {}),
    "retried_0": ("deals_ledger_writer_command_retries_bucket", {"le": "0.0"}),
}


def _read() -> dict[str, float]:
    return {key: REGISTRY.get_sample_value(name, labels) or 0.0
            for key, (name, labels) in _SAMPLES.items()}


class WriterCounts:
    """``since()``: each counter's growth since this object was made."""

    def __init__(self) -> None:
        self.start = _read()

    def since(self) -> dict[str, float]:
        now = _read()
        return {key: now[key] - self.start[key] for key in _SAMPLES}
