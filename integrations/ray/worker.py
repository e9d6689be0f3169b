""":class:`RolloutWorker`: the Ray actor that runs episodes and returns them to the driver.

The class is plain Python; :class:`~dreamgym_sdk.integrations.ray.RayRollouts` turns it into an async
actor, so one worker runs several episodes concurrently on its own event loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, run_episode
from dreamgym_sdk.types import Episode, Task

__all__ = ["RolloutWorker"]


class RolloutWorker:
    """Runs one episode per call against an env from ``env_factory`` (local or a client of a remote env).

    Episodes are recorded locally and returned whole; the driver publishes them on its bus. (An env made
    with a bus of its own in the worker publishes there too: that bus is the worker's, not the driver's.)

    Args:
        env_factory: ``factory(group_index) -> Env`` (sync or async), called in the worker.
        policy: the policy, shipped to the worker, or ``None`` with ``policy_factory``.
        policy_factory: called once in the worker to build the policy (for policies holding models).
        max_steps: safety cap on steps for envs without their own limit.
    """

    def __init__(
        self,
        env_factory: EnvFactory,
        policy: Policy | None,
        policy_factory: Callable[[], Policy] | None,
        max_steps: int | None,
    ) -> None:
        self.env_factory = env_factory
        made = policy if policy is not None else policy_factory() if policy_factory is not None else None
        if made is None:
            raise ValueError("RolloutWorker needs a policy or a policy_factory")
        self.policy: Policy = made
        self.max_steps = max_steps
        self.episodes = 0

    async def run_episode(self, task: Task, group: int, seed: int | None) -> Episode:
        """Play ``task`` once as member ``group`` of its group and return the recorded episode."""
        made: Any = self.env_factory(group)
        env: Env = await made if inspect.isawaitable(made) else made
        recorded: RecordedEnv = env if isinstance(env, RecordedEnv) else RecordingEnv(env, group=group)
        recorded.group = group
        try:
            episode = await run_episode(recorded, self.policy, task, seed=seed, max_steps=self.max_steps)
        finally:
            with anyio.CancelScope(shield=True):
                await recorded.close()
        self.episodes += 1
        return episode

    def ready(self) -> int:
        """Answers once the actor is up; returns the episodes run so far."""
        return self.episodes
