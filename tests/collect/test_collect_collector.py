"""collect(): any real env, any sink, exact and reproducible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, Source, StepResult, Task, Transition
from dreamgym_sdk.collect import (
    CollectionSummary,
    ExpertPolicy,
    MemorySink,
    MixturePolicy,
    RandomAdmissiblePolicy,
    collect,
)
from dreamgym_sdk.env import TaskLike
from dreamgym_sdk.errors import EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.testing import ScriptedExperienceModel


class CounterEnv:
    """Count up to the task's goal with "inc"; "noop" wastes a step. Reward 1 on reaching the goal."""

    def __init__(self, *, limit: int | None = 8) -> None:
        self.limit = limit
        self.closed = False
        self._n = self._steps = self._goal = 0
        self._started = self._done = False

    def _info(self) -> dict[str, Any]:
        return {"admissible_commands": ["inc", "noop"], "policy_commands": ["inc"] * (self._goal - self._n)}

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        assert isinstance(task, Task)
        self._goal, self._n, self._steps, self._started, self._done = (
            int(task.metadata["goal"]),
            0,
            0,
            True,
            False,
        )
        return "n=0", self._info()

    async def step(self, action: str) -> StepResult:
        if not self._started:
            raise ResetNeededError("reset first")
        if self._done:
            raise EpisodeFinishedError("done")
        await anyio.lowlevel.checkpoint()
        self._steps += 1
        self._n += action == "inc"
        won = self._n == self._goal
        truncated = not won and self.limit is not None and self._steps >= self.limit
        self._done = won or truncated
        return StepResult(f"n={self._n}", float(won), won, truncated, {**self._info(), "success": won})

    async def close(self) -> None:
        self.closed = True


TASKS = [
    Task(id=f"count-{g}", instruction=f"count to {g}", environment="counter", metadata={"goal": g})
    for g in (2, 3)
]


def key(episodes: Sequence[Any]) -> list[tuple[str, list[tuple[str, float, str]]]]:
    return [(e.task.id, [(t.action, t.reward, t.next_state) for t in e.transitions]) for e in episodes]


async def test_writes_exactly_the_transitions_it_played() -> None:
    sink = MemorySink()
    seen: list[str] = []
    result = await collect(
        lambda _: CounterEnv(), RandomAdmissiblePolicy(0.5, seed=3), TASKS, sink,
        episodes_per_task=3, max_concurrency=4, seed=10, on_episode=lambda e: seen.append(e.id),
    )  # fmt: skip
    played = [t for e in result.episodes for t in e.transitions]
    assert sorted(played, key=lambda t: t.id) == sorted(sink.transitions, key=lambda t: t.id)
    assert len({t.id for t in sink.transitions}) == len(sink.transitions)
    assert all(t.source is Source.REAL and t.environment == "counter" for t in sink.transitions)
    assert sorted(seen) == sorted(e.id for e in result.episodes)
    for episode in result.episodes:  # each episode went in as one contiguous batch, in step order
        start = next(i for i, t in enumerate(sink.transitions) if t.episode_id == episode.id)
        assert sink.transitions[start : start + len(episode)] == list(episode.transitions)
    assert [e.task.id for e in result.episodes] == ["count-2"] * 3 + ["count-3"] * 3
    assert [e.seed for e in result.episodes] == list(range(10, 16))


async def test_the_same_seeds_replay_the_same_collection() -> None:
    policy = MixturePolicy([(ExpertPolicy(), 1.0), (RandomAdmissiblePolicy(seed=1), 1.0)], seed=2, per="step")
    runs = [
        await collect(lambda _: CounterEnv(), policy, TASKS, MemorySink(), episodes_per_task=4, seed=0,
                      max_concurrency=c)
        for c in (1, 8)
    ]  # fmt: skip
    assert key(runs[0].episodes) == key(runs[1].episodes)
    other = await collect(lambda _: CounterEnv(), policy, TASKS, MemorySink(), episodes_per_task=4, seed=100)
    assert key(other.episodes) != key(runs[0].episodes)


async def test_policies_see_the_episode_seed() -> None:
    seen: list[Any] = []

    class Spy:
        async def act(self, task: Task, observation: str, history: Sequence[Transition], info: Any) -> str:
            seen.append(info["seed"])
            return "inc"

    await collect(lambda _: CounterEnv(), Spy(), TASKS[:1], MemorySink(), episodes_per_task=2, seed=5)
    assert sorted(set(seen)) == [5, 6]


async def test_summary() -> None:
    result = await collect(lambda _: CounterEnv(), ExpertPolicy(), TASKS, MemorySink(), episodes_per_task=2)
    summary = result.summary
    assert (summary.episodes, summary.transitions, summary.successes) == (4, 10, 4)
    assert summary.success_rate == 1.0 and summary.mean_reward == 1.0 and summary.mean_length == 2.5
    assert list(summary.per_game) == ["count-2", "count-3"]
    assert summary.per_game["count-3"].transitions == 6 and summary.per_game["count-3"].name == "count to 3"
    assert CollectionSummary.model_validate_json(summary.model_dump_json()) == summary
    empty = CollectionSummary.of([])
    assert empty.episodes == 0 and empty.success_rate == 0.0


async def test_episodes_cut_by_max_steps_are_written_too() -> None:
    sink = MemorySink()
    result = await collect(
        lambda _: CounterEnv(limit=None), RandomAdmissiblePolicy(1.0, seed=0, base=None), TASKS, sink,
        max_steps=1, seed=0,
    )  # fmt: skip
    assert all(len(e) == 1 for e in result.episodes)
    assert {t.id for t in sink.transitions} == {e.transitions[0].id for e in result.episodes}


async def test_events_reach_the_given_bus() -> None:
    bus = EventBus()
    completed = bus.subscribe(EpisodeCompleted)
    result = await collect(lambda _: CounterEnv(), ExpertPolicy(), TASKS, MemorySink(), bus=bus)
    completed.close()
    assert sorted([event.episode.id async for event in completed]) == sorted(e.id for e in result.episodes)


async def test_envs_are_closed_and_recording_envs_refused() -> None:
    envs: list[CounterEnv] = []

    def factory(_: int) -> CounterEnv:
        envs.append(CounterEnv())
        return envs[-1]

    await collect(factory, ExpertPolicy(), TASKS, MemorySink(), episodes_per_task=2)
    assert len(envs) == 4 and all(env.closed for env in envs)
    dream = DreamEnv(ScriptedExperienceModel([]))
    with pytest.raises(ExceptionGroup) as info:
        await collect(lambda _: dream, ExpertPolicy(), TASKS[:1], MemorySink())
    assert info.group_contains(TypeError, match="bare real Env")


async def test_a_failing_sink_stops_the_collection() -> None:
    class BrokenSink:
        async def add(self, transitions: Sequence[Transition]) -> None:
            raise OSError("disk full")

    with pytest.raises(ExceptionGroup) as info:
        await collect(lambda _: CounterEnv(), ExpertPolicy(), TASKS, BrokenSink())
    assert info.group_contains(OSError, match="disk full")
    with pytest.raises(ValueError, match="episodes_per_task"):
        await collect(lambda _: CounterEnv(), ExpertPolicy(), TASKS, MemorySink(), episodes_per_task=0)
