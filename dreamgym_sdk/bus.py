"""The async event bus that connects envs, rollouts, curricula, replay buffers and trainers.

Each subscriber gets its own bounded buffer with an explicit :class:`Overflow` policy, so one slow
subscriber never stalls the others unless its policy is ``block``. Delivery to all subscribers of an
event is atomic: :meth:`EventBus.publish` first waits (cancellably) until every ``block`` subscriber has
room, then hands the event to all of them without suspending. A cancelled publish therefore delivers the
event to nobody, never to some.

Subscriptions are plain async iterators, or callbacks run by the bus inside its own task group; a
callback's exception propagates to whoever owns the bus (``async with EventBus() as bus: ...``).
"""

# pyright: reportPrivateUsage=false
# (EventBus and Subscription are one unit: the bus calls the subscription's private delivery hooks.)
from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import anyio
from anyio.abc import TaskGroup

from dreamgym_sdk.errors import BusClosedError, SubscriberOverflowError
from dreamgym_sdk.events import Event

__all__ = ["EventBus", "Overflow", "Subscription", "SubscriptionStats"]

E = TypeVar("E", bound=Event)
Callback = Callable[[E], Awaitable[None] | None]


class Overflow(StrEnum):
    """What a subscription does when its buffer is full and another event arrives."""

    BLOCK = "block"
    """The publisher waits for room: backpressure, no loss."""
    DROP_OLDEST = "drop_oldest"
    """The oldest buffered event is discarded (and counted in ``stats.dropped``)."""
    ERROR = "error"
    """The subscription fails: its next receive raises :class:`SubscriberOverflowError`."""


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    """A snapshot of one subscription's counters."""

    name: str
    delivered: int
    """Events handed to the subscriber (received or passed to its callback)."""
    dropped: int
    """Events discarded because the buffer was full (``drop_oldest``/``error``)."""
    queued: int
    """Events buffered, not yet received."""


class Subscription(Generic[E]):
    """One subscriber's bounded stream of events. Iterate it with ``async for``.

    Created by :meth:`EventBus.subscribe`; ends (``StopAsyncIteration``) once the bus or the subscription
    is closed and the buffer is drained.
    """

    __slots__ = (
        "_buffer",
        "_bus",
        "_busy",
        "_closed",
        "_delivered",
        "_dropped",
        "_failed",
        "_has_items",
        "_has_room",
        "_idle",
        "maxsize",
        "name",
        "overflow",
        "types",
    )

    def __init__(
        self, bus: EventBus, types: tuple[type[Event], ...], maxsize: int, overflow: Overflow, name: str
    ) -> None:
        self._bus = bus
        self.types = types
        self.maxsize = maxsize
        self.overflow = overflow
        self.name = name
        self._buffer: deque[E] = deque()
        self._closed = False
        self._failed = False
        self._delivered = 0
        self._dropped = 0
        self._has_items: anyio.Event | None = None  # set by the publisher when a receiver waits
        self._has_room: anyio.Event | None = None  # set by the receiver when a publisher waits
        self._busy = False  # a callback is running on an event of this subscription
        self._idle: anyio.Event | None = None  # set when a callback subscription has nothing left to do

    # -- publisher side (called by the bus) -------------------------------------------------------
    def _must_wait(self, count: int) -> bool:
        # Room for `count` events; a batch larger than the buffer waits for an empty buffer instead.
        size = len(self._buffer)
        return (
            self.overflow is Overflow.BLOCK and not self._closed and size + count > self.maxsize and size > 0
        )

    async def _wait_for_room(self) -> None:
        if self._has_room is None:
            self._has_room = anyio.Event()
        room = self._has_room
        await room.wait()

    def _put(self, event: E) -> None:
        if self._closed:
            return
        buffer = self._buffer
        if len(buffer) >= self.maxsize:
            if self.overflow is Overflow.DROP_OLDEST:
                buffer.popleft()
                self._dropped += 1
            elif self.overflow is Overflow.ERROR:
                self._dropped += 1
                self._failed = True
                self._closed = True
                self._bus._unsubscribe(self)
                self._wake_receiver()
                return
            # BLOCK: the bus waited for room before calling _put (a batch may overfill by its size).
        buffer.append(event)
        if self._has_items is not None:
            self._wake_receiver()

    def _wake_receiver(self) -> None:
        if self._has_items is not None:
            self._has_items.set()
            self._has_items = None

    def _wake_joiners(self) -> None:
        if self._idle is not None:
            self._idle.set()
            self._idle = None

    async def _join(self) -> None:
        while self._busy or (self._buffer and not self._failed):
            if self._idle is None:
                self._idle = anyio.Event()
            idle = self._idle
            await idle.wait()

    def _wake_publishers(self) -> None:
        if self._has_room is not None:
            self._has_room.set()
            self._has_room = None

    # -- receiver side ---------------------------------------------------------------------------
    def receive_nowait(self) -> E:
        """Return the next buffered event.

        Raises:
            anyio.WouldBlock: nothing is buffered yet.
            anyio.EndOfStream: the subscription is closed and drained.
            SubscriberOverflowError: the buffer overflowed under ``overflow="error"``.
        """
        if self._failed:
            raise SubscriberOverflowError(
                f"subscriber {self.name!r} fell behind (buffer of {self.maxsize} full) and was dropped"
            )
        if self._buffer:
            event = self._buffer.popleft()
            self._delivered += 1
            if self._has_room is not None:
                self._wake_publishers()
            return event
        if self._closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def receive(self) -> E:
        """Wait for and return the next event; raises ``anyio.EndOfStream`` once closed and drained."""
        while True:
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                if self._has_items is None:
                    self._has_items = anyio.Event()
                items = self._has_items
                await items.wait()

    async def receive_batch(self, max_items: int = 1024) -> list[E]:
        """Wait for at least one event and return up to ``max_items`` buffered events at once."""
        batch = [await self.receive()]
        while len(batch) < max_items:
            try:
                batch.append(self.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return batch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E:
        # Fast path without a coroutine frame per event.
        if self._buffer and not self._failed:
            event = self._buffer.popleft()
            self._delivered += 1
            if self._has_room is not None:
                self._wake_publishers()
            return event
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Unsubscribe: no new events arrive; what is buffered can still be received."""
        if not self._closed:
            self._closed = True
            self._bus._unsubscribe(self)
        self._wake_receiver()
        self._wake_publishers()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> SubscriptionStats:
        """Counters of this subscription."""
        return SubscriptionStats(self.name, self._delivered, self._dropped, len(self._buffer))


class EventBus:
    """Typed publish/subscribe with one bounded stream per subscriber.

    Use it as an async context manager when subscribing callbacks: the bus owns a task group that runs
    them, and leaving the block closes the bus, lets every callback drain its buffer, and re-raises any
    callback's exception::

        async with EventBus() as bus:
            bus.subscribe(EpisodeCompleted, callback=trainer.observe)
            async with anyio.create_task_group() as tg: ...   # publish from envs, rollouts, ...

    Iterator subscriptions need no context: ``sub = bus.subscribe(TransitionRecorded)``.
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription[Any]] = []
        self._callback_subscriptions: list[Subscription[Any]] = []
        self._routes: dict[type[Event], tuple[Subscription[Any], ...]] = {}
        self._closed = False
        self._task_group: TaskGroup | None = None
        self._counter = 0

    # -- context ---------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self.close()
        task_group, self._task_group = self._task_group, None
        assert task_group is not None
        return await task_group.__aexit__(exc_type, exc, tb)

    # -- subscribe -------------------------------------------------------------------------------
    @overload
    def subscribe(
        self,
        event_type: type[E],
        /,
        *,
        maxsize: int = ...,
        overflow: Overflow | str = ...,
        name: str | None = ...,
        callback: Callback[E] | None = ...,
    ) -> Subscription[E]: ...
    @overload
    def subscribe(
        self,
        event_type: type[Event],
        other_type: type[Event],
        /,
        *more_types: type[Event],
        maxsize: int = ...,
        overflow: Overflow | str = ...,
        name: str | None = ...,
        callback: Callback[Any] | None = ...,
    ) -> Subscription[Event]: ...
    def subscribe(
        self,
        event_type: type[Event],
        /,
        *more_types: type[Event],
        maxsize: int = 1024,
        overflow: Overflow | str = Overflow.BLOCK,
        name: str | None = None,
        callback: Callback[Any] | None = None,
    ) -> Subscription[Any]:
        """Subscribe to one or more event types (subclasses included; ``Event`` means all).

        Args:
            event_type: the event class to receive.
            *more_types: further event classes to receive on the same subscription.
            maxsize: capacity of this subscriber's buffer (at least 1).
            overflow: what happens when the buffer is full, see :class:`Overflow`.
            name: a label for stats and errors; defaults to ``sub-<n>``.
            callback: if given, the bus calls it (sync or async) for each event, in order, from its own
                task group; its exceptions propagate to the bus owner. Needs ``async with bus``.

        Returns:
            The subscription; iterate it, or keep it to read ``stats`` and to ``close()`` it.
        """
        if self._closed:
            raise BusClosedError("cannot subscribe to a closed bus")
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if callback is not None and self._task_group is None:
            raise RuntimeError("callback subscriptions need the bus to be entered: `async with EventBus()`")
        self._counter += 1
        sub: Subscription[Any] = Subscription(
            self, (event_type, *more_types), maxsize, Overflow(overflow), name or f"sub-{self._counter}"
        )
        self._subscriptions.append(sub)
        self._routes.clear()
        if callback is not None:
            assert self._task_group is not None
            self._callback_subscriptions.append(sub)
            self._task_group.start_soon(_run_callback, sub, callback, name=f"dreamgym-bus:{sub.name}")
        return sub

    def _unsubscribe(self, sub: Subscription[Any]) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
            self._routes.clear()

    def _route(self, event_type: type[Event]) -> tuple[Subscription[Any], ...]:
        route = self._routes.get(event_type)
        if route is None:
            route = tuple(s for s in self._subscriptions if issubclass(event_type, s.types))
            self._routes[event_type] = route
        return route

    # -- publish ---------------------------------------------------------------------------------
    async def publish(self, event: Event, *more: Event) -> None:
        """Deliver the event(s) to every matching subscriber, waiting for room where the policy is ``block``.

        Delivery is all-or-nothing: if the call is cancelled while waiting, nobody received any of the
        events; several events given together are delivered together, in order. It is a checkpoint only
        when it has to wait.
        """
        while True:
            if self._closed:
                raise BusClosedError("cannot publish on a closed bus")
            blocked = self._blocking_subscriber(event, more)
            if blocked is None:
                self._deliver(event, more)
                return
            await blocked._wait_for_room()

    def publish_nowait(self, event: Event, *more: Event) -> None:
        """Deliver the event(s) now; raises ``anyio.WouldBlock`` if a ``block`` subscriber is full."""
        if self._closed:
            raise BusClosedError("cannot publish on a closed bus")
        if self._blocking_subscriber(event, more) is not None:
            raise anyio.WouldBlock
        self._deliver(event, more)

    def _blocking_subscriber(self, event: Event, more: tuple[Event, ...]) -> Subscription[Any] | None:
        if not more:
            for sub in self._route(type(event)):
                if sub._must_wait(1):
                    return sub
            return None
        needed: dict[Subscription[Any], int] = {}
        for ev in (event, *more):
            for sub in self._route(type(ev)):
                needed[sub] = needed.get(sub, 0) + 1
        return next((sub for sub, n in needed.items() if sub._must_wait(n)), None)

    def _deliver(self, event: Event, more: tuple[Event, ...]) -> None:
        for sub in self._route(type(event)):
            sub._put(event)
        for ev in more:
            for sub in self._route(type(ev)):
                sub._put(ev)

    async def join(self) -> None:
        """Wait until every callback subscriber has processed everything published so far.

        Use it as a barrier, e.g. before a policy update, to be sure the trainer has observed every
        completed episode.
        """
        for sub in list(self._callback_subscriptions):
            await sub._join()

    # -- close -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting events; subscribers drain what is buffered and then end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            sub.close()

    @property
    def closed(self) -> bool:
        """Whether the bus was closed (it accepts no more events or subscribers)."""
        return self._closed

    @property
    def stats(self) -> list[SubscriptionStats]:
        """Stats of every live subscription."""
        return [s.stats for s in self._subscriptions]

    @property
    def has_subscribers(self) -> bool:
        """Whether any subscription is live."""
        return bool(self._subscriptions)


async def _run_callback(sub: Subscription[Any], callback: Callback[Any]) -> None:
    is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )
    try:
        while True:
            if not sub._buffer:
                sub._wake_joiners()
            try:
                event = await sub.receive()
            except anyio.EndOfStream:
                return
            sub._busy = True
            result = callback(event)
            if is_async or inspect.isawaitable(result):
                await result  # type: ignore[misc]
            sub._busy = False
    finally:
        sub._busy = False
        sub._wake_joiners()
