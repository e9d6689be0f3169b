"""The event bus: fan-out, ordering, overflow policies, atomic delivery, closing, errors."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint

from dreamgym_sdk import (
    BusClosedError,
    EpisodeStarted,
    Event,
    EventBus,
    Overflow,
    PolicyUpdated,
    Source,
    SubscriberOverflowError,
    Task,
)

TASK = Task(id="t", instruction="do it")


def started(i: int) -> EpisodeStarted:
    return EpisodeStarted(episode_id=f"e{i}", task=TASK, source=Source.SYNTHETIC, initial_state=f"s{i}")


async def test_every_subscriber_gets_every_event_once_in_order() -> None:
    bus = EventBus()
    subs = [bus.subscribe(EpisodeStarted, maxsize=16) for _ in range(4)]
    received: list[list[str]] = [[] for _ in subs]

    async def consume(i: int) -> None:
        async for event in subs[i]:
            received[i].append(event.episode_id)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(consume, i)
        for n in range(500):
            await bus.publish(started(n))
        bus.close()
    expected = [f"e{n}" for n in range(500)]
    assert received == [expected] * 4
    assert [s.stats.delivered for s in subs] == [500] * 4
    assert all(s.stats.dropped == 0 for s in subs)


async def test_type_filtering_and_base_class_subscription() -> None:
    bus = EventBus()
    only_started = bus.subscribe(EpisodeStarted)
    everything = bus.subscribe(Event)
    two_kinds = bus.subscribe(EpisodeStarted, PolicyUpdated)
    await bus.publish(started(0))
    await bus.publish(PolicyUpdated(step=1))
    bus.close()
    assert [type(e) async for e in only_started] == [EpisodeStarted]
    assert [type(e) async for e in everything] == [EpisodeStarted, PolicyUpdated]
    assert [type(e) async for e in two_kinds] == [EpisodeStarted, PolicyUpdated]


async def test_block_policy_slows_the_publisher_instead_of_growing_memory() -> None:
    bus = EventBus()
    sub = bus.subscribe(EpisodeStarted, maxsize=8, overflow=Overflow.BLOCK)
    published = 0
    got: list[EpisodeStarted] = []

    async def publisher() -> None:
        nonlocal published
        for n in range(100):
            await bus.publish(started(n))
            published += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        await wait_all_tasks_blocked()
        assert published == 8  # the ninth publish waits for room
        assert sub.stats.queued == 8
        got.extend([await sub.receive() for _ in range(3)])
        await wait_all_tasks_blocked()
        assert published == 11
        assert sub.stats.queued == 8
        async for event in sub:
            got.append(event)
            if len(got) == 100:
                break
    assert [e.episode_id for e in got] == [f"e{n}" for n in range(100)]
    assert sub.stats.dropped == 0


async def test_drop_oldest_counts_drops_and_keeps_the_newest() -> None:
    bus = EventBus()
    sub = bus.subscribe(EpisodeStarted, maxsize=3, overflow="drop_oldest")
    for n in range(10):
        await bus.publish(started(n))
    bus.close()
    assert [e.episode_id async for e in sub] == ["e7", "e8", "e9"]
    assert sub.stats.dropped == 7
    assert sub.stats.delivered == 3


async def test_slow_drop_oldest_subscriber_never_stalls_the_others() -> None:
    bus = EventBus()
    slow = bus.subscribe(EpisodeStarted, maxsize=1, overflow=Overflow.DROP_OLDEST)
    fast = bus.subscribe(EpisodeStarted, maxsize=1000)
    for n in range(1000):
        bus.publish_nowait(started(n))  # never raises WouldBlock: nobody blocks
    assert fast.stats.queued == 1000
    assert slow.stats.dropped == 999


async def test_error_policy_fails_only_that_subscriber() -> None:
    bus = EventBus()
    strict = bus.subscribe(EpisodeStarted, maxsize=2, overflow=Overflow.ERROR)
    other = bus.subscribe(EpisodeStarted, maxsize=10)
    for n in range(3):
        await bus.publish(started(n))
    with pytest.raises(SubscriberOverflowError, match="fell behind"):
        await strict.receive()
    assert strict.stats.dropped == 1
    assert other.stats.queued == 3
    await bus.publish(started(3))  # the publisher is unaffected
    assert other.stats.queued == 4


async def test_a_failing_callback_subscriber_error_reaches_the_owner() -> None:
    async def explode(event: EpisodeStarted) -> None:
        raise RuntimeError(f"boom on {event.episode_id}")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="boom on e0")):  # pyright: ignore[reportUnknownMemberType]
        async with EventBus() as bus:
            bus.subscribe(EpisodeStarted, callback=explode)
            await bus.publish(started(0))
            await anyio.sleep_forever()  # cancelled by the failing callback


async def test_callbacks_sync_and_async_drain_on_close() -> None:
    seen_sync: list[str] = []
    seen_async: list[str] = []

    async def record(event: EpisodeStarted) -> None:
        await checkpoint()
        seen_async.append(event.episode_id)

    async with EventBus() as bus:
        bus.subscribe(EpisodeStarted, callback=lambda e: seen_sync.append(e.episode_id))
        bus.subscribe(EpisodeStarted, callback=record)
        for n in range(50):
            await bus.publish(started(n))
    # leaving the block closed the bus and waited for both callbacks to drain their buffers
    assert seen_sync == seen_async == [f"e{n}" for n in range(50)]


async def test_close_drains_buffered_events_then_ends() -> None:
    bus = EventBus()
    sub = bus.subscribe(EpisodeStarted)
    for n in range(5):
        await bus.publish(started(n))
    bus.close()
    with pytest.raises(BusClosedError):
        await bus.publish(started(99))
    with pytest.raises(BusClosedError):
        bus.subscribe(EpisodeStarted)
    assert len([e async for e in sub]) == 5
    with pytest.raises(anyio.EndOfStream):
        await sub.receive()


async def test_close_wakes_a_waiting_receiver() -> None:
    bus = EventBus()
    sub = bus.subscribe(EpisodeStarted)
    ended = anyio.Event()

    async def wait_for_end() -> None:
        async for _ in sub:
            pass
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_end)
        await wait_all_tasks_blocked()
        bus.close()
    assert ended.is_set()


async def test_cancelled_publish_delivers_to_nobody() -> None:
    bus = EventBus()
    blocking = bus.subscribe(EpisodeStarted, maxsize=1)
    roomy = bus.subscribe(EpisodeStarted, maxsize=100)
    await bus.publish(started(0))
    with anyio.move_on_after(0.01) as scope:
        await bus.publish(started(1))  # blocks on `blocking`, then is cancelled
    assert scope.cancelled_caught
    assert roomy.stats.queued == 1  # the roomy subscriber did not get a partial delivery
    assert blocking.stats.queued == 1


async def test_events_published_together_arrive_together_in_order() -> None:
    bus = EventBus()
    sub = bus.subscribe(Event, maxsize=1)
    await bus.publish(started(0), PolicyUpdated(step=1))  # a batch larger than the buffer still goes
    with pytest.raises(anyio.WouldBlock):
        bus.publish_nowait(started(2))
    assert [type(e) for e in await sub.receive_batch()] == [EpisodeStarted, PolicyUpdated]


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    sub = bus.subscribe(EpisodeStarted)
    await bus.publish(started(0))
    sub.close()
    await bus.publish(started(1))
    assert [e.episode_id async for e in sub] == ["e0"]
    assert bus.stats == []


async def test_callback_needs_an_entered_bus() -> None:
    with pytest.raises(RuntimeError, match="async with EventBus"):
        EventBus().subscribe(EpisodeStarted, callback=lambda e: None)


async def test_subscribing_from_a_started_task() -> None:
    # a consumer can subscribe inside a task and report readiness before the first publish
    received: list[str] = []

    async def starter(bus: EventBus, *, task_status: TaskStatus[None]) -> None:
        sub = bus.subscribe(EpisodeStarted)
        task_status.started()
        async for event in sub:
            assert isinstance(event, EpisodeStarted)
            received.append(event.episode_id)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            bus = EventBus()
            await tg.start(starter, bus)
            await bus.publish(started(0))  # published right after start(): the subscription sees it
            bus.close()
    assert received == ["e0"]


async def test_join_waits_until_callbacks_processed_everything() -> None:
    gate = anyio.Event()
    seen: list[str] = []

    async def slow(event: EpisodeStarted) -> None:
        await gate.wait()
        seen.append(event.episode_id)

    async with EventBus() as bus:
        bus.subscribe(EpisodeStarted, callback=slow)
        for n in range(3):
            await bus.publish(started(n))
        joined = False

        async def join() -> None:
            nonlocal joined
            await bus.join()
            joined = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(join)
            await wait_all_tasks_blocked()
            assert not joined and seen == []
            gate.set()
        assert joined and seen == ["e0", "e1", "e2"]
        await bus.join()  # nothing pending: returns at once
