"""Core runtime benchmark: event-bus throughput and DreamEnv step overhead.

Prints one JSON object. Every figure that has a target is a ratio against a baseline measured in the
same run, so machine noise cancels out:

- ``bus``: events/s through an EventBus with 4 iterator subscribers (``block`` policy, bounded buffers)
  vs a plain fan-out to 4 bounded ``asyncio.Queue``s. Target: ratio >= 0.5. The naive design (one anyio
  memory object stream per subscriber) is measured too, for reference.
- ``step``: DreamEnv overhead per step with an instant experience model (µs), vs calling the model's
  ``predict`` directly (the floor). Target: overhead <= 100 µs.
- ``concurrent``: aggregate steps/s with 1,000 concurrent episodes through a RolloutRunner with a bus.

Usage: ``python benchmarks/bench_core.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from dreamgym_sdk import (
    DreamEnv,
    Episode,
    EpisodeStarted,
    Event,
    EventBus,
    ExperienceOutput,
    ExperienceRequest,
    Prediction,
    RolloutRunner,
    Source,
    Task,
)
from dreamgym_sdk._versions import package_versions
from dreamgym_sdk.testing import FunctionPolicy

SUBSCRIBERS = 4
BUFFER = 1024
TASK = Task(id="bench", instruction="benchmark")


async def bus_events_per_s(n: int) -> float:
    bus = EventBus()
    subs = [bus.subscribe(Event, maxsize=BUFFER) for _ in range(SUBSCRIBERS)]
    events = [_started(i) for i in range(n)]

    async def consume(i: int) -> None:
        async for _ in subs[i]:
            pass

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(SUBSCRIBERS):
            tg.start_soon(consume, i)
        for event in events:
            await bus.publish(event)
        bus.close()
    return n / (time.perf_counter() - start)


async def queue_events_per_s(n: int) -> float:
    queues: list[asyncio.Queue[Event | None]] = [asyncio.Queue(maxsize=BUFFER) for _ in range(SUBSCRIBERS)]
    events = [_started(i) for i in range(n)]

    async def consume(q: asyncio.Queue[Event | None]) -> None:
        while await q.get() is not None:
            pass

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for q in queues:
            tg.start_soon(consume, q)
        for event in events:
            for q in queues:
                await q.put(event)
        for q in queues:
            await q.put(None)
    return n / (time.perf_counter() - start)


async def anyio_streams_events_per_s(n: int) -> float:
    """The naive design: one anyio memory object stream per subscriber (for reference)."""
    pairs = [anyio.create_memory_object_stream[Event](BUFFER) for _ in range(SUBSCRIBERS)]
    events = [_started(i) for i in range(n)]

    async def consume(receive: MemoryObjectReceiveStream[Event]) -> None:
        async with receive:
            async for _ in receive:
                pass

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _, receive in pairs:
            tg.start_soon(consume, receive)
        for event in events:
            for send, _ in pairs:
                await send.send(event)
        for send, _ in pairs:
            await send.aclose()
    return n / (time.perf_counter() - start)


def _started(i: int) -> EpisodeStarted:
    return EpisodeStarted(episode_id=str(i), task=TASK, source=Source.SYNTHETIC, initial_state="s")


class InstantModel:
    """An experience model that answers at once (never ends the episode)."""

    def __init__(self) -> None:
        self.prediction = Prediction(ExperienceOutput(next_state="room", reward=0.0, done=False))

    async def initial_state(self, task: Task) -> str:
        return "room"

    async def predict(self, request: ExperienceRequest) -> Prediction:
        return self.prediction


async def step_overhead_us(steps: int) -> dict[str, float]:
    model = InstantModel()
    env = DreamEnv(model, max_steps=steps + 1)
    await env.reset(task=TASK)
    request = ExperienceRequest(task=TASK, state="room", action="look")
    start = time.perf_counter()
    for _ in range(steps):
        await model.predict(request)
    floor = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        await env.step("look")
    total = time.perf_counter() - start
    # history grows with the episode; measure also short episodes, as rollouts run them
    bus = EventBus()
    bus.subscribe(Event, maxsize=10**7)
    short = DreamEnv(model, bus=bus, max_steps=20)
    start = time.perf_counter()
    for _ in range(steps // 20):
        await short.reset(task=TASK)
        for _ in range(20):
            await short.step("look")
    with_bus = time.perf_counter() - start
    return {
        "dreamenv_step_us": total / steps * 1e6,
        "model_call_us": floor / steps * 1e6,
        "overhead_us": (total - floor) / steps * 1e6,
        "with_bus_and_resets_us": with_bus / (steps // 20 * 20) * 1e6,
    }


async def concurrent_steps_per_s(episodes: int, steps: int) -> dict[str, float]:
    model = InstantModel()
    policy = FunctionPolicy(lambda task, obs, history, info: "look")
    async with EventBus() as bus:
        sub = bus.subscribe(Event, maxsize=4096)

        async def drain() -> None:
            async for _ in sub:
                pass

        runner = RolloutRunner(
            lambda g: DreamEnv(model, bus=bus, max_steps=steps, group=g),
            policy,
            bus=bus,
            max_concurrency=episodes,
        )
        start = time.perf_counter()
        result: list[Episode] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            result = await runner.run([TASK], group_size=episodes)
            bus.close()
        elapsed = time.perf_counter() - start
    total_steps = sum(len(e) for e in result)
    return {"episodes": float(episodes), "steps": float(total_steps), "steps_per_s": total_steps / elapsed}


async def main(quick: bool) -> dict[str, Any]:
    n = 50_000 if quick else 300_000
    bus_rates, queue_rates = [], []
    for _ in range(3):  # interleave and keep the best of each, to damp noise
        queue_rates.append(await queue_events_per_s(n))
        bus_rates.append(await bus_events_per_s(n))
    bus_rate, queue_rate = max(bus_rates), max(queue_rates)
    naive_rate = await anyio_streams_events_per_s(n)
    step = await step_overhead_us(2_000 if quick else 20_000)
    concurrent = await concurrent_steps_per_s(1000, 5 if quick else 20)
    return {
        "bus": {
            "subscribers": SUBSCRIBERS,
            "events": n,
            "eventbus_events_per_s": round(bus_rate),
            "asyncio_queue_fanout_events_per_s": round(queue_rate),
            "ratio": round(bus_rate / queue_rate, 3),
            "naive_anyio_streams_events_per_s": round(naive_rate),
            "naive_ratio": round(naive_rate / queue_rate, 3),
            "target_ratio": 0.5,
        },
        "step": {k: round(v, 2) for k, v in step.items()} | {"target_overhead_us": 100},
        "concurrent": {k: round(v, 1) for k, v in concurrent.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Core runtime benchmark")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for CI smoke runs")
    args = parser.parse_args()
    print(json.dumps(anyio.run(main, args.quick) | {"versions": package_versions()}, indent=2))
