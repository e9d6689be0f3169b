"""Rollouts: concurrency, GRPO groups, exactly-once ordered delivery, cancellation, trainers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from dreamgym_sdk import (
    DreamEnv,
    Episode,
    EpisodeCompleted,
    EpisodeStarted,
    Event,
    EventBus,
    ExperienceRequest,
    Overflow,
    RolloutRunner,
    Task,
    TransitionRecorded,
    attach_trainer,
    group_by_task,
)
from dreamgym_sdk.errors import ExperienceModelError, ModelOutputError
from dreamgym_sdk.experience import derive_seed
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy, RecordingTrainer


def three_step_world(req: ExperienceRequest) -> dict[str, Any]:
    done = req.step == 2
    return {"next_state": f"{req.state}>{req.action}", "reward": float(done), "done": done, "success": done}


def policy() -> FunctionPolicy:
    return FunctionPolicy(lambda task, obs, history, info: f"a{len(history)}")


async def test_thousand_concurrent_episodes_every_subscriber_gets_every_event_once_in_order() -> None:
    model = FunctionExperienceModel(three_step_world, initial_state="s")
    tasks = [Task(id=f"t{i}", instruction=f"task {i}") for i in range(250)]
    received: dict[str, list[Event]] = {}
    episodes: list[Episode] = []

    async with EventBus() as bus:
        subs = {
            "block": bus.subscribe(Event, maxsize=64, overflow=Overflow.BLOCK),
            "big": bus.subscribe(Event, maxsize=100_000),
            "episodes": bus.subscribe(EpisodeCompleted, maxsize=16),
        }

        async def drain(name: str) -> None:
            received[name] = [e async for e in subs[name]]

        runner = RolloutRunner(
            lambda g: DreamEnv(model, bus=bus, group=g), policy(), bus=bus, max_concurrency=1000
        )
        async with anyio.create_task_group() as tg:
            for name in subs:
                tg.start_soon(drain, name)
            episodes = await runner.run(tasks, group_size=4)
            bus.close()

    assert len(episodes) == 1000
    assert all(e.success and len(e.transitions) == 3 for e in episodes)
    for name in ("block", "big"):
        per_episode: dict[str, list[str]] = defaultdict(list)
        for event in received[name]:
            if isinstance(event, EpisodeStarted):
                per_episode[event.episode_id].append("start")
            elif isinstance(event, TransitionRecorded):
                per_episode[event.transition.episode_id].append(f"step{event.transition.step}")
            elif isinstance(event, EpisodeCompleted):
                per_episode[event.episode.id].append("end")
        assert len(per_episode) == 1000
        assert all(seq == ["start", "step0", "step1", "step2", "end"] for seq in per_episode.values())
    completed = [e for e in received["episodes"] if isinstance(e, EpisodeCompleted)]
    assert sorted(e.episode.id for e in completed) == sorted(e.id for e in episodes)
    for sub in subs.values():
        assert sub.stats.dropped == 0


async def test_groups_ordering_and_seeds() -> None:
    seeds: list[int | None] = []

    def world(req: ExperienceRequest) -> dict[str, Any]:
        if req.step == 0:
            seeds.append(req.seed)
        return {"next_state": "end", "reward": 0.0, "done": True}

    model = FunctionExperienceModel(world, initial_state="s")
    tasks = [Task(id="a", instruction="a"), Task(id="b", instruction="b")]
    runner = RolloutRunner(lambda g: DreamEnv(model, group=g), policy(), max_concurrency=3)
    episodes = await runner.run(tasks, group_size=3, seed=100)
    assert [(e.task.id, e.group) for e in episodes] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 0),
        ("b", 1),
        ("b", 2),
    ]
    assert [e.seed for e in episodes] == [100, 101, 102, 103, 104, 105]
    assert sorted(s for s in seeds if s is not None) == sorted(
        derive_seed(e, "step", 0) for e in range(100, 106)
    )
    assert {k: len(v) for k, v in group_by_task(episodes).items()} == {"a": 3, "b": 3}


async def test_capacity_limit_is_honoured() -> None:
    running = peak = 0

    async def world(req: ExperienceRequest) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.lowlevel.checkpoint()
        running -= 1
        return {"next_state": "x", "reward": 0.0, "done": req.step == 1}

    model = FunctionExperienceModel(world, initial_state="s")
    runner = RolloutRunner(lambda g: DreamEnv(model, group=g), policy(), max_concurrency=5)
    episodes = await runner.run([Task(instruction="t")], group_size=40)
    assert len(episodes) == 40
    assert 1 < peak <= 5


async def test_cancelling_the_runner_leaves_no_partial_transition_and_no_task() -> None:
    """Cancel while some episodes wait on the model and others wait on a full "block" subscriber."""
    gate = anyio.Event()

    async def world(req: ExperienceRequest) -> dict[str, Any]:
        if req.step >= 2 and int(req.task.id) % 2:
            await gate.wait()  # odd tasks hang inside the model call
        return {"next_state": f"s{req.step + 1}", "reward": 0.0, "done": req.step == 9}

    model = FunctionExperienceModel(world, initial_state="s0")
    envs: list[DreamEnv] = []

    def make_env(group: int) -> DreamEnv:
        env = DreamEnv(model, bus=bus, group=group)
        envs.append(env)
        return env

    bus = EventBus()
    stuck = bus.subscribe(TransitionRecorded, maxsize=25)  # never read: publishers block on it
    witness = bus.subscribe(TransitionRecorded, maxsize=100_000)
    before = set(asyncio.all_tasks())
    runner = RolloutRunner(make_env, policy(), bus=bus, max_concurrency=8)

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run, [Task(id=str(i), instruction="t") for i in range(16)])
        await wait_all_tasks_blocked()
        tg.cancel_scope.cancel()

    assert set(asyncio.all_tasks()) == before  # no task left behind
    published: dict[str, list[int]] = defaultdict(list)
    while witness.stats.queued:
        t = witness.receive_nowait().transition
        published[t.episode_id].append(t.step)
    assert stuck.stats.queued == sum(len(v) for v in published.values()) == 25  # atomic fan-out
    unfinished = [e for e in envs if e.episode is not None and not e.episode.done]
    assert len(unfinished) == 8  # cancelled mid-flight: every running episode was interrupted
    assert envs
    for env in envs:
        episode = env.episode
        if episode is None:
            continue
        steps = [t.step for t in episode.transitions]
        assert steps == list(range(len(steps)))  # contiguous, nothing half-recorded
        assert steps == published.get(episode.id, [])  # recorded == published, exactly


async def test_trainer_backend_sees_every_completed_episode() -> None:
    model = FunctionExperienceModel(three_step_world, initial_state="s")
    trainer = RecordingTrainer()
    async with EventBus() as bus:
        attach_trainer(bus, trainer)
        runner = RolloutRunner(lambda g: DreamEnv(model, bus=bus, group=g), policy(), bus=bus)
        episodes = await runner.run([Task(instruction="a"), Task(instruction="b")], group_size=5)
    assert sorted(e.id for e in trainer.episodes) == sorted(e.id for e in episodes)
    metrics = await trainer.update()
    assert metrics == {"episodes": 10.0, "mean_reward": 1.0, "success_rate": 1.0}
    assert await trainer.update() is None


async def test_runner_validates_arguments() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        RolloutRunner(
            lambda g: DreamEnv(FunctionExperienceModel(three_step_world)), policy(), max_concurrency=0
        )
    runner = RolloutRunner(lambda g: DreamEnv(FunctionExperienceModel(three_step_world)), policy())
    with pytest.raises(ValueError, match="group_size"):
        await runner.run([Task(instruction="a")], group_size=0)


async def test_envs_without_a_bus_publish_on_the_runners_bus() -> None:
    model = FunctionExperienceModel(three_step_world, initial_state="s")
    bus = EventBus()
    completed = bus.subscribe(EpisodeCompleted)
    runner = RolloutRunner(lambda g: DreamEnv(model), policy(), bus=bus)
    episodes = await runner.run([Task(instruction="a")], group_size=3)
    bus.close()
    assert sorted([e.episode.id async for e in completed]) == sorted(e.id for e in episodes)
    assert [e.group for e in episodes] == [0, 1, 2]


async def test_skip_errors_drops_only_the_failing_episode() -> None:
    def world(req: ExperienceRequest) -> dict[str, Any]:
        if req.task.id == "bad" and req.step == 1:
            raise ModelOutputError("unusable answer", raw_text="{not json", attempts=3)
        return three_step_world(req)

    model = FunctionExperienceModel(world, initial_state="s")
    tasks = [Task(id="good", instruction="g"), Task(id="bad", instruction="b")]
    async with EventBus() as bus:
        completed: list[str] = []
        bus.subscribe(EpisodeCompleted, callback=lambda e: completed.append(e.episode.task.id))
        runner = RolloutRunner(
            lambda g: DreamEnv(model, group=g), policy(), bus=bus, skip_errors=(ExperienceModelError,)
        )
        episodes = await runner.run(tasks, group_size=2)
        await bus.join()
        assert completed == ["good", "good"]
    assert [(e.task.id, len(e.transitions)) for e in episodes] == [("good", 3), ("good", 3)]
    assert [(task.id, type(exc)) for task, exc in runner.failures] == [("bad", ModelOutputError)] * 2

    strict = RolloutRunner(lambda g: DreamEnv(model, group=g), policy())
    with pytest.raises(ExceptionGroup) as raised:
        await strict.run(tasks)
    assert raised.group_contains(ModelOutputError)
