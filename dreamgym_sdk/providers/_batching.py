"""Dynamic batching of concurrent calls to a local model: one batch runs at a time, and whatever queued up
meanwhile forms the next (the ``hf:`` provider and :class:`~dreamgym_sdk.policies.HFPolicy` share it)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["BatchJob", "BatchStats", "DynamicBatcher"]


@dataclass
class BatchStats:
    """What the batcher did; inspect it to see batching happen."""

    requests: int = 0
    """Requests answered."""
    batches: int = 0
    """``generate`` calls."""
    sizes: Counter[int] = field(default_factory=Counter[int])
    """How many batches had each size."""

    @property
    def max_batch_size(self) -> int:
        """The largest batch so far (0 before the first)."""
        return max(self.sizes, default=0)


@dataclass(eq=False, kw_only=True)
class BatchJob:
    """One caller's request; subclasses add what it asks and what the batch answers."""

    done: anyio.Event = field(default_factory=anyio.Event)
    lead: bool = False
    """This caller runs the next batch."""
    answered: bool = False
    error: BaseException | None = None


J = TypeVar("J", bound=BatchJob)


class DynamicBatcher(Generic[J]):
    """Callers :meth:`submit` jobs; the head of the queue leads a batch of up to ``max_batch_size`` queued
    jobs, which ``generate`` answers in a worker thread, then hands the lead to the next queued job.

    ``generate(jobs)`` fills every job, or sets its ``error`` (an exception it raises fails the whole
    batch). A caller cancelled while it waits leaves the queue, passing the lead on if it had it; a batch
    already running is not abandoned, so the other callers in it still get their answers.

    Args:
        generate: answers a batch (blocking; runs in a worker thread).
        max_batch_size: the most jobs in one batch.
        window_s: how long a leader waits for more jobs before it starts (0: take what is queued now).
        interrupted: the error of a job its batch ended without answering.
    """

    def __init__(
        self,
        generate: Callable[[list[J]], None],
        *,
        max_batch_size: int,
        window_s: float = 0.0,
        interrupted: Callable[[], BaseException],
    ) -> None:
        self.generate = generate
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.interrupted = interrupted
        self.stats = BatchStats()
        """Batching statistics."""
        self._queue: deque[J] = deque()
        self._busy = False

    async def submit(self, job: J) -> J:
        """Queue ``job`` and return it answered.

        Raises:
            BaseException: the job's ``error``.
        """
        self._queue.append(job)
        if not self._busy:
            self._busy = True
            job.lead = True
        else:
            try:
                await job.done.wait()
            except BaseException:
                self._abandon(job)
                raise
        if job.lead and not job.answered and job.error is None:
            await self._run_batch(job)
        if job.error is not None:
            raise job.error
        return job

    def _abandon(self, job: J) -> None:
        """A waiting caller was cancelled: leave the queue, passing on the turn if it had it."""
        if job in self._queue:
            self._queue.remove(job)
        if job.lead and not job.answered and job.error is None:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._queue:
            nxt = self._queue[0]
            nxt.lead = True
            nxt.done.set()
        else:
            self._busy = False

    async def _run_batch(self, leader: J) -> None:
        """Run one batch, led by ``leader`` (the head of the queue); always hands the turn on."""
        try:
            if self.window_s > 0:
                await anyio.sleep(self.window_s)
            else:
                await anyio.lowlevel.checkpoint()  # let callers that are ready now join this batch
        except BaseException:
            self._abandon(leader)
            raise
        jobs = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
        try:
            # Not abandoned on cancel: the thread answers every job, so the other callers get answers.
            await anyio.to_thread.run_sync(self._generate, jobs)
        finally:
            for job in jobs:
                if not job.answered and job.error is None:
                    job.error = self.interrupted()
                job.done.set()
            self._hand_over()

    def _generate(self, jobs: list[J]) -> None:
        try:
            self.generate(jobs)
        except Exception as exc:  # one failure answers the whole batch
            for job in jobs:
                if job.error is None:
                    job.error = exc
            return
        for job in jobs:
            job.answered = job.error is None
        if answered := sum(job.answered for job in jobs):
            self.stats.requests += answered
            self.stats.batches += 1
            self.stats.sizes[len(jobs)] += 1
