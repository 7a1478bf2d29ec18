"""The command writer: one thread per process that group-commits commands.

Callers (HTTP handlers, the settlement process, the hold-expiry sweeper)
send commands, which wait in a bounded line, and get a future. Each says
who it is (an ``Authority``), and a command it may not send is refused
before it waits (``application.authority``). The writer takes whatever is
waiting, up to a limit, decides it as one batch and commits it in one
database transaction, then answers every caller.

Under load the batches grow by themselves, so the cost of a commit is
shared by many commands; with a single caller a batch is one command and
nothing waits.

A non-atomic batch of many items is decided and committed in chunks, one
chunk per group, and answered once, when its last chunk is
(``application.write.chunks``): no commit holds the store's writer lock for
a whole big batch.

A group is fair to the callers in it (``application.write.attempts``).
Commands that can fail midway (atomic batches) are decided first in it, so
one that fails has cost nothing before it and the others go on without it;
should one fail after others were decided, the group is decided again once
and its later atomic batches are sent on to the next group (first in line
there). A refusal spends nobody's retry budget; each command keeps its own
across groups. ``application.write.writer_metrics`` counts all of it.

The writer's words are its own: commands are *sent* and *wait*; "queued" and
"submitted" name settlement states in this ledger (docs/architecture.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from application.authority import Authority, check_admission
from application.commands import Command
from application.errors import InternalError, LedgerUnavailable
from application.outcomes import BatchRecorded, Outcome
from application.write.attempts import GroupAnswer, can_fail_midway
from application.write.chunks import (
    GROUP_BATCH_ITEMS_MAX,
    batch_items,
    chunks_of,
    is_batch_chunk,
    merged,
    partly_applied,
)
from application.write.processor import CommandProcessor, Result
from application.write.writer_metrics import observe_chunk, observe_group
from domain.errors import LedgerError
from domain.provenance import Provenance

logger = logging.getLogger(__name__)

BATCH_COMMANDS_MAX_DEFAULT = 1000
COMMANDS_WAITING_MAX_DEFAULT = 100_000
ANSWER_TIMEOUT_S_DEFAULT = 30.0


@dataclass(frozen=True)
class BatchReport:
    """What the writer tells observers (metrics) after each batch."""

    commands: Sequence[Command]
    results: Sequence[Result]
    duration_s: float
    waited_s: Sequence[float]


BatchObserver = Callable[[BatchReport], None]


@dataclass
class _Sent:
    command: Command
    future: Future
    sent_at: float
    provenance: Provenance | None = None
    """Who asked: what the command's events record (``domain.provenance``)."""
    running: bool = False
    """Taken into a group once (then it can no longer be cancelled)."""
    spent: int = 0
    """Its retry budget spent in earlier groups."""
    decided: int = 0
    """Times it was decided, in all its groups."""
    chunks: list[Command] = field(default_factory=list)
    """What is left to decide: the command, or its chunks still to commit."""
    answers: list[BatchRecorded] = field(default_factory=list)
    """The answers of its chunks committed so far."""

    @property
    def deciding(self) -> Command:
        """What the next group decides for it: the command or its next chunk."""
        return self.chunks[0]

    def chunk_answered(self, result: Result) -> Result | None:
        """The answer of what was decided; None when chunks are left (then
        each is a command of its own, with a retry budget of its own), or
        the command's whole answer."""
        self.chunks.pop(0)
        if isinstance(result, LedgerError):
            return partly_applied(result, self.answers)
        if not self.answers and not self.chunks:
            return result
        assert isinstance(result, BatchRecorded)
        self.answers.append(result)
        if self.chunks:
            self.spent = self.decided = 0
            return None
        return merged(self.answers)


class CommandWriter:
    def __init__(
        self,
        processor: CommandProcessor,
        *,
        batch_commands_max: int = BATCH_COMMANDS_MAX_DEFAULT,
        commands_waiting_max: int = COMMANDS_WAITING_MAX_DEFAULT,
        observers: Sequence[BatchObserver] = (),
    ) -> None:
        self.processor = processor
        self.batch_commands_max = batch_commands_max
        self._waiting: queue.Queue[_Sent | None] = queue.Queue(commands_waiting_max)
        self._sent_on: deque[_Sent] = deque()
        """Commands a group sent on: the next group takes them first."""
        self._observers = list(observers)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> CommandWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="command-writer", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Answer every command already waiting, then stop."""
        self._stopping.set()
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def add_observer(self, observer: BatchObserver) -> None:
        self._observers.append(observer)

    @property
    def waiting(self) -> int:
        """Commands sent and not yet taken into a batch."""
        return self._waiting.qsize()

    def send(self, command: Command, *, authority: Authority) -> Future:
        check_admission(command, authority)
        if self._stopping.is_set() or self._thread is None:
            raise LedgerUnavailable("the command writer is not running; retry")
        sent = _Sent(command, Future(), time.monotonic(), authority.provenance,
                     chunks=chunks_of(command))
        try:
            self._waiting.put_nowait(sent)
        except queue.Full:
            raise LedgerUnavailable("too many commands waiting; retry shortly") from None
        return sent.future

    def execute(
        self, command: Command, *, authority: Authority,
        timeout_s: float = ANSWER_TIMEOUT_S_DEFAULT,
    ) -> Outcome:
        """Send and wait: the outcome, or the command's LedgerError raised."""
        return self.send(command, authority=authority).result(timeout_s)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._process(batch)

    def _next_batch(self) -> list[_Sent] | None:
        """What the next group decides: the commands sent on first, then
        those waiting, up to ``batch_commands_max`` commands and
        ``GROUP_BATCH_ITEMS_MAX`` batch items (its first command whatever its
        size); a command that would exceed them goes first in the next group."""
        batch: list[_Sent] = []
        while self._sent_on and self._fits(batch, self._sent_on[0]):
            batch.append(self._sent_on.popleft())
        if not batch:
            first = self._waiting.get()
            if first is None:
                return None
            batch = [first]
        while len(batch) < self.batch_commands_max:
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._waiting.put(None)
                break
            if not self._fits(batch, item):
                self._sent_on.append(item)
                break
            batch.append(item)
        return batch

    def _fits(self, batch: list[_Sent], sent: _Sent) -> bool:
        if not batch:
            return True
        items = sum(batch_items(s.deciding) for s in batch) + batch_items(sent.deciding)
        return len(batch) < self.batch_commands_max and items <= GROUP_BATCH_ITEMS_MAX

    def _process(self, batch: list[_Sent]) -> None:
        # A caller may cancel its future while the command waits (an HTTP
        # request cancelled by its client or by shutdown, via asyncio.wrap_future).
        # A cancelled command is dropped, unapplied; the others are marked
        # running, so they can no longer be cancelled and setting their result
        # below cannot fail and take the writer thread down.
        batch = [s for s in batch if s.running or s.future.set_running_or_notify_cancel()]
        if not batch:
            return
        # Commands that can fail midway are decided first: one that does then
        # has cost nothing before it (a large batch decided ahead of it would
        # be decided twice). Reordering commands of one group is free: none of
        # them was answered before another was sent.
        batch.sort(key=lambda sent: not can_fail_midway(sent.deciding))
        started = time.monotonic()
        answer = self._decide(batch)
        answered: list[_Sent] = []
        results: list[Result] = []
        for sent, decided in zip(batch, answer.results, strict=True):
            result = self._answer_of(sent, decided)
            if result is None:
                self._sent_on.append(sent)
                continue
            answered.append(sent)
            results.append(result)
            if isinstance(result, LedgerError):
                sent.future.set_exception(result)
            else:
                sent.future.set_result(result)
        observe_group(answer, [max(sent.decided - 1, 0) for sent in answered])
        self._report(answered, results, started)

    def _answer_of(self, sent: _Sent, decided: Result | None) -> Result | None:
        """The command's answer, or None when it goes on to the next group
        (sent on by the processor, or its next chunk)."""
        if decided is None:
            return None
        if is_batch_chunk(sent.deciding) and not isinstance(decided, LedgerError):
            observe_chunk()
        return sent.chunk_answered(decided)

    def _decide(self, batch: list[_Sent]) -> GroupAnswer:
        """The processor's answer for the group; each command's budget spent
        and times decided carried over to its next group, should it be sent on."""
        for sent in batch:
            sent.running = True
        try:
            answer = self.processor.process_group([s.deciding for s in batch],
                                                  [s.spent for s in batch],
                                                  provenances=[s.provenance for s in batch])
        except Exception:
            logger.exception("command batch failed with a bug; none of it was applied")
            error = InternalError("internal error; not applied")
            return GroupAnswer([error] * len(batch), [s.spent for s in batch], [0] * len(batch))
        for sent, spent, decided in zip(batch, answer.spent, answer.decided, strict=True):
            sent.spent = spent
            sent.decided += decided
        return answer

    def _report(self, batch: list[_Sent], results: list[Result], started: float) -> None:
        report = BatchReport(
            commands=[s.command for s in batch], results=results,
            duration_s=time.monotonic() - started,
            waited_s=[started - s.sent_at for s in batch],
        )
        for observer in self._observers:
            try:
                observer(report)
            except Exception:
                logger.exception("batch observer failed")
