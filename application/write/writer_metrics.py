"""The command writer's fairness, counted (``GET /metrics``): how often
groups are decided again and why, which refusals caused it, how many times
each command was decided again before its answer, commands sent on to the
next group, and writer turns taken. No label names a caller or a command.

These are what the fairness tests assert on (counts, never latencies); the
latency cost of an attack goes in the benchmark (``benchmarks/suite.py``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from application.metrics_registry import metric
from application.write.attempts import CAUSES, GroupAnswer

RETRY_BUCKETS = (0, 1, 2, 3, 5, 10, 30)

GROUP_REDECIDES = metric(
    Counter, "deals_ledger_writer_redecides",
    "Times a group of commands was decided again, by cause (refused_midway: a command "
    "changed aggregates and then failed; lost_commit: another process committed first)",
    labels=("cause",),
)
for _cause in CAUSES:  # exposed at 0 from the start, so a rate over them is never absent
    GROUP_REDECIDES.labels(_cause)
REDECIDING_REFUSALS = metric(
    Counter, "deals_ledger_writer_redeciding_refusals",
    "Commands refused after changing aggregates (an atomic batch's bad item, a bug) "
    "that made their group be decided again",
)
COMMAND_RETRIES = metric(
    Histogram, "deals_ledger_writer_command_retries",
    "Times a command was decided again before its answer (its own retries, any cause)",
    buckets=RETRY_BUCKETS,
)
SENT_ON = metric(
    Counter, "deals_ledger_writer_sent_on",
    "Commands that could fail midway sent on to the next group after a refusal midway "
    "in theirs",
)
BATCH_CHUNKS = metric(
    Counter, "deals_ledger_writer_batch_chunks",
    "Chunks of non-atomic batches committed (application.write.chunks: a batch of more "
    "items than a chunk holds is several commits)",
)
TURNS = metric(Counter, "deals_ledger_writer_turns", "Writer turns taken (PostgreSQL: exclusive "
               "commits for a command that kept losing its commit to other processes)")


def observe_chunk() -> None:
    """One chunk of a non-atomic batch (or a whole small one) committed."""
    BATCH_CHUNKS.inc()


def observe_group(answer: GroupAnswer, answered_retries: list[int]) -> None:
    """Count one group: its re-decides, refusals and turns, each command it
    sent on, and the retries of each command it answered (all its groups)."""
    for cause in CAUSES:
        if answer.redecides.get(cause):
            GROUP_REDECIDES.labels(cause).inc(answer.redecides[cause])
    if answer.redeciding_refusals:
        REDECIDING_REFUSALS.inc(answer.redeciding_refusals)
    if answer.sent_on:
        SENT_ON.inc(answer.sent_on)
    if answer.turns:
        TURNS.inc(answer.turns)
    for retries in answered_retries:
        COMMAND_RETRIES.observe(retries)
