"""Blocking work in a worker thread that stops soon after its caller is cancelled.

A worker thread cannot be interrupted, so a cancelled ``anyio.to_thread.run_sync`` waits for the work to
finish: Ctrl-C during a 20-minute training run would wait 20 minutes. Here the caller returns at once and
the work, which checks a stop event between steps, raises :class:`Stopped` at its next check and keeps
nothing (the interpreter waits for the thread at exit: about one step).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

__all__ = ["Stopped", "run_stoppable"]

T = TypeVar("T")


class Stopped(Exception):
    """Raised by work whose stop event was set, at its next check."""


async def run_stoppable(work: Callable[[threading.Event], T]) -> T:
    """Run ``work(stop)`` in a worker thread; when the caller is cancelled, set ``stop`` and return at once
    (the work is expected to check ``stop`` between steps and raise :class:`Stopped`)."""
    stop = threading.Event()
    try:
        return await anyio.to_thread.run_sync(lambda: work(stop), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        stop.set()
        raise
