"""Run policies in environments: one episode, or many concurrently in GRPO-style groups."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.types import Episode, Task

__all__ = ["EnvFactory", "RolloutRunner", "group_by_task", "make_env", "run_episode"]

log = get_logger(__name__)

EnvFactory = Callable[[int], Env | Awaitable[Env]]
"""Makes a fresh environment for one episode; receives the rollout's group index."""


async def make_env(env_factory: EnvFactory, group: int) -> Env:
    """The environment ``env_factory`` makes for ``group``, awaited when the factory is async."""
    made: Any = env_factory(group)
    return await made if inspect.isawaitable(made) else made


async def run_episode(
    env: Env, policy: Policy, task: Task, *, seed: int | None = None, max_steps: int | None = None
) -> Episode:
    """Reset ``env`` on ``task`` and let ``policy`` act until the episode ends.

    ``env`` must record its episode (a :class:`DreamEnv` or a :class:`RecordingEnv`); wrap other envs in
    ``RecordingEnv`` first. ``max_steps`` is a safety cap for environments without their own limit: when
    hit, the episode is returned as it stands (not done).
    """
    if not isinstance(env, RecordedEnv):
        raise TypeError("run_episode needs a recording env: wrap it with RecordingEnv(env, bus=...)")
    obs, info = await env.reset(task=task, seed=seed)
    steps = 0
    while max_steps is None or steps < max_steps:
        action = await policy.act(task, obs, env.history, info)
        result = await env.step(action)
        steps += 1
        obs, info = result.observation, result.info
        if result.done:
            break
    episode = env.episode
    assert episode is not None
    return episode


class RolloutRunner:
    """Runs many episodes concurrently under a capacity limit, in groups of rollouts per task.

    Each episode gets a fresh env from ``env_factory``; envs that do not record their episodes (real
    environments) are wrapped in :class:`RecordingEnv`, and recording envs created without a bus get the
    runner's, so every episode publishes ``EpisodeStarted``, ``TransitionRecorded`` and
    ``EpisodeCompleted`` on ``bus`` exactly once.

    Cancelling :meth:`run` cancels every episode: no task is left running and no transition is left
    half-recorded (a step either appears in its episode and on the bus, or nowhere).

    Args:
        env_factory: ``factory(group_index) -> Env`` (sync or async).
        policy: the policy that acts in every episode.
        bus: the event bus to publish on (optional).
        max_concurrency: how many episodes run at once.
        max_steps: safety cap on steps per episode for envs without their own limit.
        skip_errors: exception types that end only the episode that raised them (e.g.
            ``ExperienceModelError`` when a model answer stays unusable): the episode is dropped from the
            result (it never completes, so no ``EpisodeCompleted``), logged, and kept in :attr:`failures`.
            Any other exception cancels the whole run.
    """

    def __init__(
        self,
        env_factory: EnvFactory,
        policy: Policy,
        *,
        bus: EventBus | None = None,
        max_concurrency: int = 64,
        max_steps: int | None = None,
        skip_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.env_factory = env_factory
        self.policy = policy
        self.bus = bus
        self.max_concurrency = max_concurrency
        self.max_steps = max_steps
        self.skip_errors = skip_errors
        self.failures: list[tuple[Task, Exception]] = []
        """Episodes dropped because of a ``skip_errors`` exception, with the exception (oldest first)."""

    async def run(
        self, tasks: Sequence[Task], *, group_size: int = 1, seed: int | None = None
    ) -> list[Episode]:
        """Roll out ``group_size`` episodes of every task; return them ordered by (task, group index).

        Args:
            tasks: the tasks to attempt.
            group_size: rollouts per task (the GRPO group size n).
            seed: base seed; episode ``i`` (in the returned order) is reset with ``seed + i``.
        """
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        jobs = [(task, g) for task in tasks for g in range(group_size)]
        results: list[Episode | None] = [None] * len(jobs)
        limiter = anyio.CapacityLimiter(self.max_concurrency)

        async def one(index: int, task: Task, group: int) -> None:
            async with limiter:
                env = await self._make_env(group)
                try:
                    results[index] = await run_episode(
                        env,
                        self.policy,
                        task,
                        seed=None if seed is None else seed + index,
                        max_steps=self.max_steps,
                    )
                except self.skip_errors as exc:
                    log.warning("episode dropped", task_id=task.id, group=group, error=repr(exc))
                    self.failures.append((task, exc))
                finally:
                    with anyio.CancelScope(shield=True):
                        await env.close()

        async with anyio.create_task_group() as tg:
            for index, (task, group) in enumerate(jobs):
                tg.start_soon(one, index, task, group)
        return [episode for episode in results if episode is not None]

    async def _make_env(self, group: int) -> RecordedEnv:
        env = await make_env(self.env_factory, group)
        if not isinstance(env, RecordedEnv):
            return RecordingEnv(env, bus=self.bus, group=group)
        if env.bus is None:  # publish on the runner's bus unless the env was given its own
            env.bus = self.bus
        env.group = group
        return env


def group_by_task(episodes: Sequence[Episode]) -> dict[str, list[Episode]]:
    """Group episodes by task id (the GRPO groups), keeping their order."""
    groups: dict[str, list[Episode]] = {}
    for episode in episodes:
        groups.setdefault(episode.task.id, []).append(episode)
    return groups
