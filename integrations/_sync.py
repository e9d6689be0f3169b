"""Calling async environments from synchronous code: one event loop in a background thread.

Synchronous frameworks (gymnasium, TRL's tool loop, agent frameworks' sync tools) call an async
:class:`~dreamgym_sdk.Env` through a :class:`LoopThread`. It owns an anyio blocking portal: an event loop
running in a daemon thread, started on first use and stopped by :meth:`LoopThread.close`. Every call runs
on that one loop, so components that bind to a loop (HTTP sessions, locks) always see the same one, and
the caller may itself be inside another running event loop (a notebook, an async framework).

Several façades can share one loop by passing the same ``portal``; a shared portal is never stopped by
the façades that borrow it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import TypeVar, TypeVarTuple, Unpack

from anyio.from_thread import BlockingPortal, start_blocking_portal

from dreamgym_sdk.errors import EnvClosedError

__all__ = ["LoopThread"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class LoopThread:
    """Runs coroutine functions from synchronous code on one event loop in a background thread.

    Args:
        portal: an existing portal to run on (borrowed, never stopped here); by default the loop thread
            is started on the first :meth:`call` and owned by this object.
        name: the name of the owned thread.
    """

    def __init__(self, portal: BlockingPortal | None = None, *, name: str = "dreamgym-loop") -> None:
        self._portal = portal
        self._owned: ExitStack | None = None
        self._name = name
        self._closed = False
        self._lock = threading.Lock()

    @property
    def portal(self) -> BlockingPortal:
        """The portal calls run through (started on first access when owned)."""
        with self._lock:
            if self._closed:
                raise EnvClosedError("this environment is closed")
            if self._portal is None:
                stack = ExitStack()
                self._portal = stack.enter_context(start_blocking_portal(name=self._name))
                self._owned = stack
            return self._portal

    def call(self, fn: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
        """Run ``await fn(*args)`` on the loop and return its result (exceptions propagate)."""
        return self.portal.call(fn, *args)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the owned loop thread (idempotent); later calls raise :class:`EnvClosedError`."""
        with self._lock:
            self._closed = True
            owned, self._owned = self._owned, None
            self._portal = None
        if owned is not None:
            owned.close()
