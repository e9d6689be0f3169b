""":class:`RolloutWorker`: the Ray actor that runs episodes and returns them to the driver.

The class is plain Python; :class:`~dreamgym_sdk.integrations.ray.RayRollouts` turns it into an async
actor, so one worker runs several episodes concurrently on its own event loop (Ray's, asyncio).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, run_episode
from dreamgym_sdk.types import Episode, Task

__all__ = ["EnvContext", "RolloutWorker"]

EnvContext = Callable[[], AbstractAsyncContextManager[EnvFactory]]
"""``context() -> async context manager yielding an env factory``: the worker's long-lived components
(a provider, an opened replay buffer) are set up on entering and released on leaving."""


class RolloutWorker:
    """Runs one episode per call against an env from its env factory (local, or a client of a remote env).

    Episodes are recorded locally and returned whole; the driver publishes them on its bus. (An env made
    with a bus of its own in the worker publishes there too: that bus is the worker's, not the driver's.)

    With an ``env_context``, :meth:`start` enters it in a task the worker owns (async context managers
    such as a replay buffer must be left in the task that entered them), and :meth:`stop` leaves it.

    Args:
        env_factory: ``factory(group_index) -> Env`` (sync or async), or ``None`` with ``env_context``.
        env_context: makes the async context that yields the env factory, once per worker.
        policy: the policy, shipped to the worker, or ``None`` with ``policy_factory``.
        policy_factory: called once in the worker to build the policy (for policies holding models).
        max_steps: safety cap on steps for envs without their own limit.
    """

    def __init__(
        self,
        env_factory: EnvFactory | None,
        env_context: EnvContext | None,
        policy: Policy | None,
        policy_factory: Callable[[], Policy] | None,
        max_steps: int | None,
    ) -> None:
        made = policy if policy is not None else policy_factory() if policy_factory is not None else None
        if made is None:
            raise ValueError("RolloutWorker needs a policy or a policy_factory")
        if (env_factory is None) == (env_context is None):
            raise ValueError("RolloutWorker needs exactly one of env_factory and env_context")
        self.env_factory = env_factory
        self.env_context = env_context
        self.policy: Policy = made
        self.max_steps = max_steps
        self.episodes = 0
        self._host: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self) -> int:
        """Set up the worker (enter its ``env_context``); returns the episodes run so far."""
        if self.env_context is None or self._host is not None:
            return self.episodes
        context = self.env_context
        ready, stopping = asyncio.Event(), asyncio.Event()
        self._stopping = stopping

        async def host() -> None:
            async with context() as factory:
                self.env_factory = factory
                ready.set()
                await stopping.wait()

        self._host = asyncio.get_running_loop().create_task(host(), name="dreamgym-ray-worker-context")
        waiter = asyncio.get_running_loop().create_task(ready.wait())
        await asyncio.wait({self._host, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._host.done():  # entering the context failed: report why
            self._host.result()
        return self.episodes

    async def stop(self) -> None:
        """Leave the ``env_context`` (waiting for it to release its resources)."""
        host, stopping = self._host, self._stopping
        if host is not None and stopping is not None:
            stopping.set()
            await host

    def set_weights(self, weights: Mapping[str, Any], version: int) -> None:
        """Take on the driver's policy weights and version (the policy must have ``set_weights``, as
        :class:`~dreamgym_sdk.policies.HFPolicy` does)."""
        set_weights = getattr(self.policy, "set_weights", None)
        if set_weights is None:
            raise TypeError(f"{type(self.policy).__name__} cannot take weights: it has no set_weights()")
        set_weights(weights, version=version)

    def info(self) -> dict[str, Any]:
        """Where the worker runs and what it did: Ray node id, process id, episodes played, policy version."""
        import ray

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "episodes": self.episodes,
            "policy_version": getattr(self.policy, "version", None),
        }

    async def run_episode(self, task: Task, group: int, seed: int | None) -> Episode:
        """Play ``task`` once as member ``group`` of its group and return the recorded episode."""
        factory = self.env_factory
        if factory is None:
            raise RuntimeError("the worker's env_context is not entered: call start() first")
        made: Any = factory(group)
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
