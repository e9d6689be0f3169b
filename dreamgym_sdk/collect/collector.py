"""Collect real transitions: run a policy against real environments and store every step.

:func:`collect` runs the episodes concurrently with a :class:`~dreamgym_sdk.RolloutRunner`, records
them with :class:`~dreamgym_sdk.RecordingEnv` (``source="real"``, events on the bus as usual) and writes
each episode's transitions to a :class:`~dreamgym_sdk.collect.TransitionSink` as soon as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.collect.sinks import TransitionSink
from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv, TaskLike
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, RolloutRunner, make_env
from dreamgym_sdk.types import Episode, Source, StepResult, Task

__all__ = ["CollectionResult", "CollectionSummary", "GameStats", "collect"]


class GameStats(BaseModel):
    """What was collected from one task (one game)."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    name: str
    """The game file's name (without extension) when the task names one, else the start of the
    instruction."""
    episodes: int
    transitions: int
    successes: int
    success_rate: float
    mean_reward: float
    """Mean total reward per episode."""


class CollectionSummary(BaseModel):
    """Totals of a collection run."""

    model_config = ConfigDict(frozen=True)

    episodes: int
    transitions: int
    successes: int
    success_rate: float
    mean_reward: float
    """Mean total reward per episode."""
    mean_length: float
    """Mean number of steps per episode."""
    elapsed_s: float
    per_game: dict[str, GameStats]
    """Per task id, in the order the tasks were given."""

    @classmethod
    def of(cls, episodes: Sequence[Episode], *, elapsed_s: float = 0.0) -> CollectionSummary:
        """Summarise ``episodes``."""
        groups: dict[str, list[Episode]] = {}
        for episode in episodes:
            groups.setdefault(episode.task.id, []).append(episode)
        per_game = {task_id: _game_stats(group) for task_id, group in groups.items()}
        n = len(episodes)
        return cls(
            episodes=n,
            transitions=sum(len(e) for e in episodes),
            successes=sum(e.success for e in episodes),
            success_rate=sum(e.success for e in episodes) / n if n else 0.0,
            mean_reward=sum(e.total_reward for e in episodes) / n if n else 0.0,
            mean_length=sum(len(e) for e in episodes) / n if n else 0.0,
            elapsed_s=elapsed_s,
            per_game=per_game,
        )


def _game_stats(episodes: list[Episode]) -> GameStats:
    task = episodes[0].task
    game_path = task.metadata.get("game_path")
    name = PurePath(str(game_path)).stem if game_path else task.instruction[:40]
    n = len(episodes)
    successes = sum(e.success for e in episodes)
    return GameStats(
        task_id=task.id,
        name=name,
        episodes=n,
        transitions=sum(len(e) for e in episodes),
        successes=successes,
        success_rate=successes / n,
        mean_reward=sum(e.total_reward for e in episodes) / n,
    )


class CollectionResult(BaseModel):
    """The episodes a collection played (in task order, then rollout order) and their summary."""

    model_config = ConfigDict(frozen=True)

    episodes: list[Episode]
    summary: CollectionSummary


async def collect(
    env_factory: EnvFactory,
    policy: Policy,
    tasks: Sequence[Task],
    sink: TransitionSink,
    *,
    episodes_per_task: int = 1,
    max_concurrency: int = 4,
    seed: int = 0,
    max_steps: int | None = None,
    bus: EventBus | None = None,
    environment: str = "real",
    on_episode: Callable[[Episode], object] | None = None,
) -> CollectionResult:
    """Play ``episodes_per_task`` episodes of every task and write every transition to ``sink``.

    ```python
    sink = JsonlSink("real.jsonl")
    result = await collect(lambda _: TextWorldEnv(max_steps=30), ExpertPolicy(),
                           [g.to_task() for g in games], sink, episodes_per_task=2, seed=0)
    print(result.summary.success_rate)
    ```

    Each episode's transitions are written in one ``sink.add`` call as soon as the episode ends, so the
    sink holds exactly the transitions of :attr:`CollectionResult.episodes` (an episode cut by
    ``max_steps`` without ending is written after the run). Episode ``i`` (in the returned order) is
    reset with ``seed + i``, and ``info["seed"]`` carries it to the policies: the same seeds replay the
    same collection.

    Args:
        env_factory: ``factory(group_index) -> Env`` (sync or async); returns a fresh, bare real env
            (not a RecordingEnv: the collector records it).
        policy: acts in every episode.
        tasks: what to play; for TextWorld, ``GameInfo.to_task()`` of each game.
        sink: where transitions go (a replay buffer, :class:`JsonlSink`, ...).
        episodes_per_task: rollouts per task.
        max_concurrency: episodes running at once.
        seed: base seed of the episodes.
        max_steps: safety cap for environments without their own step limit.
        bus: publish ``EpisodeStarted``/``TransitionRecorded``/``EpisodeCompleted`` here too.
        environment: the environment name recorded for tasks given as strings.
        on_episode: called with each episode once its transitions are in the sink (progress bars).
    """
    if episodes_per_task < 1:
        raise ValueError("episodes_per_task must be at least 1")
    started = time.perf_counter()
    written: set[str] = set()

    async def episode_ended(episode: Episode) -> None:
        await sink.add(episode.transitions)
        written.add(episode.id)
        if on_episode is not None:
            on_episode(episode)

    async def collecting_env(group: int) -> Env:
        env = await make_env(env_factory, group)
        if isinstance(env, RecordedEnv):
            await env.close()
            raise TypeError("collect() records episodes itself: env_factory must return a bare real Env")
        return _CollectingEnv(_SeedInInfo(env), episode_ended, bus=bus, environment=environment, group=group)

    runner = RolloutRunner(
        collecting_env, policy, bus=bus, max_concurrency=max_concurrency, max_steps=max_steps
    )
    episodes = await runner.run(tasks, group_size=episodes_per_task, seed=seed)
    for episode in episodes:  # cut by max_steps before the env ended them
        if episode.id not in written and episode.transitions:
            await episode_ended(episode)
    summary = CollectionSummary.of(episodes, elapsed_s=time.perf_counter() - started)
    return CollectionResult(episodes=episodes, summary=summary)


class _CollectingEnv(RecordingEnv):
    """A RecordingEnv (``source="real"``) that hands each finished episode to ``on_done``."""

    def __init__(
        self,
        env: Env,
        on_done: Callable[[Episode], Awaitable[None]],
        *,
        bus: EventBus | None,
        environment: str,
        group: int,
    ) -> None:
        super().__init__(env, bus=bus, source=Source.REAL, environment=environment, group=group)
        self._on_done = on_done

    async def step(self, action: str) -> StepResult:
        result = await super().step(action)
        if result.done:
            episode = self.episode
            assert episode is not None
            await self._on_done(episode)
        return result


class _SeedInInfo:
    """Adds the episode's reset seed to every ``info`` as ``info["seed"]`` (unless the env does)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self._seed: int | None = None

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self._seed = seed
        obs, info = await self.env.reset(task=task, seed=seed, options=options)
        return obs, {"seed": seed, **info}

    async def step(self, action: str) -> StepResult:
        result = await self.env.step(action)
        if "seed" in result.info:
            return result
        info = {"seed": self._seed, **result.info}
        return StepResult(result.observation, result.reward, result.terminated, result.truncated, info)

    async def close(self) -> None:
        await self.env.close()
