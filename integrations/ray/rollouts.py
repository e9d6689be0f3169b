""":class:`RayRollouts`: rollouts on Ray actors, streamed back onto the driver's event bus exactly once."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.events import EpisodeCompleted
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory
from dreamgym_sdk.types import Episode, Task

from .config import RayConfig
from .worker import EnvContext, RolloutWorker

__all__ = ["RayRollouts", "RolloutStats"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RolloutStats:
    """A snapshot of a :class:`RayRollouts`' counters."""

    submitted: int
    """Episodes sent to a worker."""
    published: int
    """Episodes received and handed to the bus (or returned, without a bus)."""
    in_flight: int
    """Episodes between submission and publication: never more than ``max_in_flight``."""


class RayRollouts:
    """Runs episodes on Ray worker actors and publishes each completed one on the driver's bus, once.

    ```python
    async with EventBus() as bus, RayRollouts(env_factory, policy=policy, bus=bus,
                                              config=RayConfig(num_workers=4)) as rollouts:
        bus.subscribe(EpisodeCompleted, callback=trainer.observe)
        episodes = await rollouts.run(tasks, group_size=8, seed=0)
    ```

    :meth:`run` has the signature of :meth:`~dreamgym_sdk.RolloutRunner.run`: same tasks, groups and
    seeds, same order of the returned episodes, so a training loop can switch between them. Each worker
    builds its env per episode with ``env_factory(group_index)`` (a DreamEnv over shared components, a
    real env, or a client of a remote env server) and wraps envs that do not record episodes in
    :class:`~dreamgym_sdk.RecordingEnv`. Completed episodes travel back to the driver as they finish
    and are published as :class:`~dreamgym_sdk.EpisodeCompleted` the moment they arrive; a worker
    publishes nothing on the driver's bus, so each episode reaches it exactly once (also when Ray retries
    an episode whose worker died: a retried call still has one result).

    **Backpressure.** At most ``config.max_in_flight`` episodes are between submission and publication.
    Publishing waits for ``block`` subscribers, so a slow learner stalls new submissions instead of
    letting finished episodes pile up.

    **Ray's lifetime.** Entering starts Ray (``ray.init`` with ``config.address``) unless it is already
    initialised in this process, and creates the workers; leaving kills the workers and shuts Ray down
    only if it was started here. Ray needs the asyncio backend of anyio.

    ``env_factory``, ``policy`` and ``policy_factory`` are pickled to the workers with cloudpickle: define
    them in an importable module (or register yours with ``ray.cloudpickle.register_pickle_by_value``).

    **Long-lived components per worker.** ``env_context`` replaces ``env_factory`` when the envs share
    components that must be opened and closed (an experience model's provider, a replay buffer on object
    storage): an async context manager factory, entered once in each worker, yielding the env factory::

        @asynccontextmanager
        async def dream_envs():
            async with LanceDBReplayBuffer(ReplayConfig(uri="s3://bucket/replay")) as replay:
                model = ReasoningExperienceModel(get_provider("openai/exp", api_base=VLLM), retriever=replay)
                yield lambda group: DreamEnv(model, max_steps=30)

    Leaving :class:`RayRollouts` leaves every worker's context before the workers are killed.

    Args:
        env_factory: ``factory(group_index) -> Env`` (sync or async), called in the workers.
        env_context: alternatively, makes (in each worker) the async context yielding the env factory.
        policy: a picklable policy, copied to every worker.
        policy_factory: alternatively, called once in each worker to build its policy.
        bus: the driver's bus; ``None`` just returns the episodes.
        config: where and how many workers run, and the backpressure limit.
        max_steps: safety cap on steps per episode for envs without their own limit.
    """

    def __init__(
        self,
        env_factory: EnvFactory | None = None,
        *,
        env_context: EnvContext | None = None,
        policy: Policy | None = None,
        policy_factory: Callable[[], Policy] | None = None,
        bus: EventBus | None = None,
        config: RayConfig | None = None,
        max_steps: int | None = None,
    ) -> None:
        if (policy is None) == (policy_factory is None):
            raise ValueError("pass exactly one of policy= or policy_factory=")
        if (env_factory is None) == (env_context is None):
            raise ValueError("pass exactly one of env_factory or env_context=")
        self.env_factory = env_factory
        self.env_context = env_context
        self.policy = policy
        self.policy_factory = policy_factory
        self.bus = bus
        self.config = config or RayConfig()
        self.max_steps = max_steps
        self._ray: Any = None
        self._started_ray = False
        self._workers: list[Any] = []
        self._load: list[int] = []
        self._slots = anyio.CapacityLimiter(self.config.max_in_flight)
        self._submitted = 0
        self._published = 0
        self._in_flight = 0

    @property
    def stats(self) -> RolloutStats:
        """Counters of episodes submitted and published."""
        return RolloutStats(self._submitted, self._published, self._in_flight)

    @property
    def num_workers(self) -> int:
        """Workers currently running."""
        return len(self._workers)

    async def __aenter__(self) -> Self:
        ray = require("ray", extra="ray", feature="RayRollouts")
        self._ray = ray
        if not ray.is_initialized():
            kwargs = _init_kwargs(self.config)
            await anyio.to_thread.run_sync(lambda: ray.init(**kwargs))
            self._started_ray = True
        try:
            await self._start_workers()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self._stop()

    async def run(
        self, tasks: Sequence[Task], *, group_size: int = 1, seed: int | None = None
    ) -> list[Episode]:
        """Roll out ``group_size`` episodes of every task on the workers; return them by (task, group).

        Each episode is published on the bus as soon as it arrives. Cancelling ``run`` cancels the
        episodes still running on the workers.

        Args:
            tasks: the tasks to attempt.
            group_size: rollouts per task (the GRPO group size n).
            seed: base seed; episode ``i`` (in the returned order) is reset with ``seed + i``.
        """
        if not self._workers:
            raise RuntimeError("RayRollouts is not running: use `async with RayRollouts(...) as rollouts`")
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        jobs = [(task, g) for task in tasks for g in range(group_size)]
        results: list[Episode | None] = [None] * len(jobs)

        async def one(index: int, task: Task, group: int) -> None:
            async with self._slots:  # held until the episode is published: the backpressure
                self._in_flight += 1
                try:
                    episode = await self._remote(task, group, None if seed is None else seed + index)
                    if self.bus is not None:
                        await self.bus.publish(EpisodeCompleted(episode=episode))
                    self._published += 1
                    results[index] = episode
                finally:
                    self._in_flight -= 1

        async with anyio.create_task_group() as tg:
            for index, (task, group) in enumerate(jobs):
                tg.start_soon(one, index, task, group)
        return [episode for episode in results if episode is not None]

    async def sync_weights(self, policy: Any) -> None:
        """Send ``policy``'s weights and version to every worker's policy copy: one copy in Ray's object
        store, read by each worker (``policy.get_weights()`` here, ``set_weights`` there; an
        :class:`~dreamgym_sdk.policies.HFPolicy` has both). The training loop calls it after every update
        that changed the weights; episodes played afterwards record the new version in their samples, so
        a backend's ``max_policy_lag`` bounds how stale a trained-on episode may be."""
        if not self._workers:
            raise RuntimeError("RayRollouts is not running: use `async with RayRollouts(...) as rollouts`")
        weights = await anyio.to_thread.run_sync(policy.get_weights)
        ref = self._ray.put(weights)
        for call in [worker.set_weights.remote(ref, int(policy.version)) for worker in self._workers]:
            await call

    async def worker_info(self) -> list[dict[str, Any]]:
        """Per worker: the Ray node it runs on, its process id, episodes played and policy version."""
        return [await worker.info.remote() for worker in self._workers]

    async def _remote(self, task: Task, group: int, seed: int | None) -> Episode:
        """Run one episode on the least busy worker; cancelling cancels the remote call."""
        worker = min(range(len(self._workers)), key=self._load.__getitem__)
        self._load[worker] += 1
        self._submitted += 1
        ref = self._workers[worker].run_episode.remote(task, group, seed)
        try:
            episode: Episode = await ref
            return episode
        except anyio.get_cancelled_exc_class():
            self._ray.cancel(ref)
            raise
        finally:
            self._load[worker] -= 1

    async def _start_workers(self) -> None:
        ray, cfg = self._ray, self.config
        actor = ray.remote(RolloutWorker).options(
            num_cpus=cfg.worker_num_cpus,
            num_gpus=cfg.worker_num_gpus,
            max_concurrency=cfg.episodes_per_worker,
            max_restarts=cfg.max_restarts,
            max_task_retries=cfg.max_task_retries,
            scheduling_strategy="SPREAD" if cfg.spread else "DEFAULT",
            runtime_env=cfg.runtime_env,
        )
        workers = [
            actor.remote(self.env_factory, self.env_context, self.policy, self.policy_factory, self.max_steps)
            for _ in range(cfg.num_workers)
        ]
        self._workers, self._load = workers, [0] * len(workers)
        for worker in workers:  # enters env contexts; surfaces constructor errors (an unpicklable policy)
            await worker.start.remote()
        log.info("ray rollout workers started", workers=len(workers))

    async def _stop(self) -> None:
        ray, workers = self._ray, self._workers
        self._workers, self._load = [], []
        if ray is None:
            return
        for worker in workers:
            if self.env_context is not None:
                try:
                    await worker.stop.remote()  # releases the worker's components
                except Exception as exc:  # a dead worker has nothing left to release
                    log.warning("ray rollout worker did not stop cleanly", error=repr(exc))
            ray.kill(worker)
        if self._started_ray:
            self._started_ray = False
            await anyio.to_thread.run_sync(ray.shutdown)


def _init_kwargs(config: RayConfig) -> dict[str, Any]:
    """``ray.init`` arguments; the local-instance settings only when no cluster is named."""
    kwargs: dict[str, Any] = {"address": config.address, "namespace": config.namespace, "log_to_driver": True}
    if config.node_ip_address is not None:
        kwargs["_node_ip_address"] = config.node_ip_address
    if config.address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs.update(num_cpus=config.num_cpus, include_dashboard=config.include_dashboard)
    return kwargs
