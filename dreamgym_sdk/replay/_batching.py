"""Group commit: concurrent requests are gathered and processed together by one worker task.

A :class:`Coalescer` turns many concurrent ``submit(item)`` calls into few ``process(items)`` calls: while
one batch is being processed, new items queue up and form the next batch (plus an optional short
linger window). Each caller gets its own result, or the exception that failed its batch. The worker runs
in a task group owned by whoever owns the coalescer (the replay buffer), started with ``run`` and stopped
with ``close``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

from dreamgym_sdk.errors import ReplayBufferError

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class _Pending(Generic[T, R]):
    __slots__ = ("done", "error", "item", "result", "size")

    def __init__(self, item: T, size: int) -> None:
        self.item = item
        self.size = size
        self.done = anyio.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """Processes submitted items in batches, one batch at a time.

    Args:
        process: handles a batch; returns one result per item, in order.
        name: used in error messages.
        window: seconds to linger after the first item of a batch arrives, gathering more (0: none).
        max_size: a batch stops growing at this total size (a single larger item still forms a batch).
        size: the size of one item (default 1).
    """

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        name: str,
        window: float = 0.0,
        max_size: int = 1 << 30,
        size: Callable[[T], int] | None = None,
    ) -> None:
        self._process = process
        self._name = name
        self._window = window
        self._max_size = max_size
        self._size = size
        self._queue: deque[_Pending[T, R]] = deque()
        self._wakeup: anyio.Event | None = None
        self._closed = False
        self._running = False
        self.batches = 0
        """Batches processed so far."""
        self.items = 0
        """Items processed so far."""

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result.

        If the caller is cancelled, the item may still be processed (a write may still commit).

        Raises:
            ReplayBufferError: the coalescer is closed, or closed before the item was processed.
        """
        if self._closed or not self._running:
            raise ReplayBufferError(f"{self._name}: not running (use the buffer inside `async with`)")
        pending: _Pending[T, R] = _Pending(item, self._size(item) if self._size else 1)
        self._queue.append(pending)
        if self._wakeup is not None:
            self._wakeup.set()
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]  # set by the worker with the matching item

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The worker loop; returns after :meth:`close` once the queue is drained."""
        self._running = True
        task_status.started()
        in_flight: list[_Pending[T, R]] = []
        try:
            while True:
                while not self._queue:
                    if self._closed:
                        return
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                    self._wakeup = None
                if self._window > 0 and not self._closed:
                    await anyio.sleep(self._window)
                in_flight = self._take()
                try:
                    results = await self._process([p.item for p in in_flight])
                except Exception as exc:
                    for p in in_flight:
                        p.error = exc
                else:
                    for p, result in zip(in_flight, results, strict=True):
                        p.result = result
                self.batches += 1
                self.items += len(in_flight)
                for p in in_flight:
                    p.done.set()
                in_flight = []
        finally:
            self._running = False
            self._closed = True
            for p in in_flight:
                if not p.done.is_set():
                    p.error = ReplayBufferError(
                        f"{self._name}: cancelled while processing this request; it may or may not have "
                        "taken effect"
                    )
                    p.done.set()
            for p in self._queue:
                p.error = ReplayBufferError(f"{self._name}: closed before this request was processed")
                p.done.set()
            self._queue.clear()

    def _take(self) -> list[_Pending[T, R]]:
        batch = [self._queue.popleft()]
        total = batch[0].size
        while self._queue and total + self._queue[0].size <= self._max_size:
            p = self._queue.popleft()
            batch.append(p)
            total += p.size
        return batch

    def close(self) -> None:
        """Refuse new items; the worker finishes what is queued, then returns."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
