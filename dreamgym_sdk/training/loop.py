"""The DreamGym training loop: sample tasks → grouped rollouts → policy update → curriculum → repeat.

The same loop trains in the synthetic environment (a :class:`~dreamgym_sdk.DreamEnv` factory) and in a
real one (sim-to-real): only the env factory and the budget change.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.curriculum import Curriculum, Decision, TaskPool, reward_variance
from dreamgym_sdk.errors import ConfigError, ExperienceModelError, NothingToTrainError
from dreamgym_sdk.events import EpisodeCompleted, PolicyUpdated
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, RolloutRunner, group_by_task
from dreamgym_sdk.training._checkpoint import atomic_directory, atomic_write, previous
from dreamgym_sdk.training.base import TrainerBackend, attach_trainer
from dreamgym_sdk.types import Episode, Source, Task

__all__ = ["Budget", "Checkpointable", "DreamGymTrainer", "LoopConfig", "Rollouts", "iteration_metrics"]

log = get_logger(__name__)


class Budget(BaseModel):
    """When to stop; the first limit reached ends the run (``None`` means no limit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iterations: int | None = Field(default=10, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    """Experience-model tokens (prompt + completion), summed over transitions."""
    cost_usd: float | None = Field(default=None, gt=0)
    seconds: float | None = Field(default=None, gt=0)
    real_transitions: int | None = Field(default=None, ge=1)
    """Transitions taken in real environments (the sim-to-real budget)."""


class LoopConfig(BaseModel):
    """Settings of :class:`DreamGymTrainer`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks_per_iteration: int = Field(default=8, ge=1)
    group_size: int = Field(default=4, ge=1)
    """Rollouts per task (the GRPO group size n)."""
    max_concurrency: int = Field(default=64, ge=1)
    seed: int = 0
    budget: Budget = Field(default_factory=Budget)
    progress: bool = True
    """Show a progress display on a terminal."""
    skip_failed_episodes: bool = True
    """Drop an episode whose experience model answer stays unusable (``ExperienceModelError``) instead of
    failing the iteration; dropped episodes are logged and counted in the ``failed_episodes`` metric."""
    allow_idle_iterations: bool = False
    """An iteration with no usable episode raises :class:`~dreamgym_sdk.errors.NothingToTrainError`;
    ``True`` logs a warning instead and counts it in ``total/idle_iterations``. An iteration whose update
    took no optimizer step (e.g. every GRPO group had equal rewards) is always logged as a warning and
    counted in ``total/idle_updates``."""


@runtime_checkable
class Checkpointable(Protocol):
    """A trainer backend that can save and restore its state (model, optimizer, counters)."""

    def save(self, directory: Path) -> None:
        """Write the backend's state to ``directory``."""
        ...

    def load(self, directory: Path) -> None:
        """Restore the state :meth:`save` wrote to ``directory``."""
        ...


MetricsHook = Callable[[dict[str, float]], None]


@runtime_checkable
class Rollouts(Protocol):
    """Runs grouped episodes: :class:`~dreamgym_sdk.RolloutRunner`, or e.g. Ray actors
    (``dreamgym_sdk.integrations.ray.RayRollouts``) that publish on the same bus.

    Rollouts that act with copies of the policy elsewhere also define ``async sync_weights(policy)``;
    the loop calls it after every update that took an optimizer step."""

    async def run(
        self, tasks: Sequence[Task], *, group_size: int = 1, seed: int | None = None
    ) -> list[Episode]:
        """Roll out ``group_size`` episodes of every task; return them ordered by (task, group index)."""
        ...


def iteration_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """Success, reward, group variance, tokens, cost and transition counts of one batch of episodes."""
    n = len(episodes) or 1
    transitions = [t for e in episodes for t in e.transitions]
    groups = group_by_task(episodes).values()
    variances = [reward_variance([e.total_reward for e in g]) for g in groups if len(g) > 1]
    costs = [t.provenance.cost_usd for t in transitions if t.provenance.cost_usd is not None]
    return {
        "episodes": float(len(episodes)),
        "success_rate": sum(e.success for e in episodes) / n,
        "mean_reward": sum(e.total_reward for e in episodes) / n,
        "mean_steps": len(transitions) / n,
        "group_reward_variance": sum(variances) / len(variances) if variances else 0.0,
        "tokens": float(
            sum(t.provenance.prompt_tokens + t.provenance.completion_tokens for t in transitions)
        ),
        "cost_usd": float(sum(costs)),
        "real_transitions": float(sum(t.source is Source.REAL for t in transitions)),
        "synthetic_transitions": float(sum(t.source is Source.SYNTHETIC for t in transitions)),
    }


class DreamGymTrainer:
    """Runs the DreamGym loop until its budget is spent, in a run directory it can resume from.

    Each iteration: draw ``tasks_per_iteration`` tasks from the curriculum (at most λ of them synthetic),
    roll out ``group_size`` episodes of each through ``env_factory``, let the backend (subscribed to
    ``EpisodeCompleted``) update the policy, publish ``PolicyUpdated``, expand the curriculum from the
    highest-variance groups, then checkpoint. Other subscribers of the bus (a replay buffer admitting
    synthetic transitions, dashboards) see every event.

    The run directory holds ``metrics.jsonl`` (one line per iteration), ``state.json`` (the last finished
    iteration and the totals), ``checkpoint/`` (the backend's state, if it is :class:`Checkpointable`) and
    the task pool if the curriculum's pool has a path there. A run killed at any point restarts from its
    last finished iteration.

    Args:
        env_factory: makes one environment per episode (DreamEnv for synthetic training, a real env for
            sim-to-real); receives the group index.
        policy: the policy being trained (the backend updates it).
        backend: the RL backend.
        curriculum: task selection and generation; a plain :class:`TaskPool` works too (no expansion).
        run_dir: where metrics, state and checkpoints go.
        config: loop settings and budget.
        bus: the event bus (the trainer enters it if you do not pass one).
        on_metrics: called with every iteration's metrics (e.g. to log to TensorBoard or W&B).
        rollouts: what runs the episodes; defaults to a :class:`RolloutRunner` over ``env_factory`` on the
            bus. Pass e.g. Ray rollouts to spread episodes over a cluster (they must publish
            ``EpisodeCompleted`` on the trainer's bus).
    """

    def __init__(
        self,
        *,
        env_factory: EnvFactory,
        policy: Policy,
        backend: TrainerBackend,
        curriculum: Curriculum | TaskPool,
        run_dir: str | Path,
        config: LoopConfig | None = None,
        bus: EventBus | None = None,
        on_metrics: Sequence[MetricsHook] = (),
        rollouts: Rollouts | None = None,
    ) -> None:
        self.env_factory = env_factory
        self.policy = policy
        self.backend = backend
        self.curriculum = curriculum
        self.run_dir = Path(run_dir)
        self.config = config or LoopConfig()
        self.bus = bus
        self.on_metrics = list(on_metrics)
        self.rollouts = rollouts
        self.iteration = 0
        self.totals: dict[str, float] = {
            "tokens": 0.0,
            "cost_usd": 0.0,
            "real_transitions": 0.0,
            "seconds": 0.0,
            "idle_iterations": 0.0,
            "idle_updates": 0.0,
        }
        self._rng = random.Random(self.config.seed)
        n = self.config.group_size
        for name, part in (("backend", backend), ("curriculum", curriculum)):
            theirs = getattr(getattr(part, "config", None), "group_size", None)
            if theirs is not None and theirs != n:
                raise ConfigError(
                    f"the {name}'s group_size ({theirs}) differs from the loop's ({n}): every group would "
                    "be split or padded; give both the same group size"
                )

    # -- persistence -----------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """``state.json`` in the run directory: the last finished iteration and the totals."""
        return self.run_dir / "state.json"

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl`` in the run directory: one line of metrics per iteration."""
        return self.run_dir / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoint/`` in the run directory: the backend's state, if it is :class:`Checkpointable`."""
        return self.run_dir / "checkpoint"

    def _resume(self) -> None:
        """Blocking (state files, the backend's weights): runs in a worker thread."""
        if not self.state_path.exists():
            return
        state = json.loads(self.state_path.read_text())
        self.iteration = int(state["iteration"])
        self.totals.update(state["totals"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        if isinstance(self.backend, Checkpointable):
            # a kill between swapping in a new checkpoint and committing state.json leaves the checkpoint one
            # iteration ahead; the previous one is then still in checkpoint.old
            for directory in (self.checkpoint_dir, previous(self.checkpoint_dir)):
                if directory.exists() and _checkpoint_iteration(directory) in (None, self.iteration):
                    self.backend.load(directory)
                    break
        if self.metrics_path.exists():  # drop lines of an iteration that did not finish
            lines = self.metrics_path.read_text().splitlines()
            kept = [ln for ln in lines if ln.strip() and json.loads(ln)["iteration"] <= self.iteration]
            atomic_write(self.metrics_path, "".join(ln + "\n" for ln in kept))
        log.info("resumed run", run_dir=str(self.run_dir), iteration=self.iteration)

    def _checkpoint(self, metrics: dict[str, float]) -> None:
        """Commit a finished iteration: checkpoint, metrics line, then ``state.json``, the commit point; the
        previous checkpoint is removed only once the state names the new one's iteration. Blocking: runs
        in a worker thread."""
        if isinstance(self.backend, Checkpointable):
            with atomic_directory(self.checkpoint_dir, keep_previous=True) as tmp:
                tmp.rmdir()  # a Checkpointable's save makes its directory
                self.backend.save(tmp)
                (tmp / _ITERATION_FILE).write_text(str(self.iteration))
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(metrics) + "\n")
            f.flush()
            os.fsync(f.fileno())
        version, internal, gauss = self._rng.getstate()
        state = {"iteration": self.iteration, "totals": self.totals, "rng": [version, list(internal), gauss]}
        atomic_write(self.state_path, json.dumps(state))
        _remove_tree(previous(self.checkpoint_dir))

    # -- the loop --------------------------------------------------------------------------------
    def _exhausted(self) -> str | None:
        budget, totals = self.config.budget, self.totals
        if budget.iterations is not None and self.iteration >= budget.iterations:
            return "iterations"
        if budget.tokens is not None and totals["tokens"] >= budget.tokens:
            return "tokens"
        if budget.cost_usd is not None and totals["cost_usd"] >= budget.cost_usd:
            return "cost"
        if budget.seconds is not None and totals["seconds"] >= budget.seconds:
            return "time"
        if budget.real_transitions is not None and totals["real_transitions"] >= budget.real_transitions:
            return "real transitions"
        return None

    async def run(self) -> list[dict[str, float]]:
        """Run iterations until the budget is spent; return the metrics of the iterations run now."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(self._resume)  # weights load off the event loop
        if self.bus is not None:
            return await self._run(self.bus)
        async with EventBus() as bus:
            return await self._run(bus)

    async def _run(self, bus: EventBus) -> list[dict[str, float]]:
        subscription = attach_trainer(bus, self.backend)
        curriculum = self.curriculum if isinstance(self.curriculum, Curriculum) else None
        observer = None
        if curriculum is not None:
            curriculum.bus = curriculum.bus or bus
            observer = bus.subscribe(
                EpisodeCompleted, callback=lambda e: curriculum.observe(e.episode), name="curriculum"
            )
        history: list[dict[str, float]] = []
        try:
            with _Progress(self.config, self.iteration) as progress:
                while (reason := self._exhausted()) is None:
                    metrics = await self._iteration(bus, curriculum)
                    history.append(metrics)
                    progress.update(metrics)
                log.info("budget spent", reason=reason, iteration=self.iteration)
        finally:
            subscription.close()
            if observer is not None:
                observer.close()
        return history

    async def _iteration(self, bus: EventBus, curriculum: Curriculum | None) -> dict[str, float]:
        cfg = self.config
        started = time.perf_counter()
        if curriculum is not None:
            tasks = curriculum.sample(cfg.tasks_per_iteration, self._rng)
        else:
            assert isinstance(self.curriculum, TaskPool)
            tasks = self.curriculum.sample(cfg.tasks_per_iteration, synthetic_share=1.0, rng=self._rng)
        skip = (ExperienceModelError,) if cfg.skip_failed_episodes else ()
        runner = self.rollouts or RolloutRunner(
            self.env_factory, self.policy, bus=bus, max_concurrency=cfg.max_concurrency, skip_errors=skip
        )
        seed = cfg.seed * 1_000_003 + self.iteration * 10_007
        episodes = await runner.run(tasks, group_size=cfg.group_size, seed=seed)
        failed = len(tasks) * cfg.group_size - len(episodes)
        rollout_seconds = time.perf_counter() - started
        await bus.join()  # the backend and the curriculum have observed every episode
        if not episodes:
            message = f"iteration {self.iteration + 1} played no usable episode ({failed} failed)"
            if not cfg.allow_idle_iterations:
                raise NothingToTrainError(
                    f"{message}: nothing to train on (see the warnings logged for the failed episodes; "
                    "LoopConfig(allow_idle_iterations=True) goes on regardless)"
                )
            log.warning(message, iteration=self.iteration + 1, failed_episodes=failed)
            self.totals["idle_iterations"] += 1
        result = await self.backend.update()
        update = result if result is not None else {"optimizer_steps": 0.0}  # nothing trained, visibly
        if episodes and update.get("optimizer_steps") == 0.0:
            log.warning(
                "update took no optimizer step",
                iteration=self.iteration + 1,
                **{k: v for k, v in update.items() if k.startswith("skipped/") or k == "groups_zero_std"},
            )
            self.totals["idle_updates"] += 1
        sync = getattr(self.rollouts, "sync_weights", None)
        if sync is not None and update.get("optimizer_steps") != 0.0:
            await sync(self.policy)  # the workers' copies play the next iteration with the new weights
        self.iteration += 1
        await bus.publish(PolicyUpdated(step=self.iteration, metrics=update))
        decisions = await curriculum.expand() if curriculum is not None else []
        metrics = iteration_metrics(episodes)
        elapsed = time.perf_counter() - started
        for key in ("tokens", "cost_usd", "real_transitions"):
            self.totals[key] += metrics[key]
        self.totals["seconds"] += elapsed
        steps = metrics["mean_steps"] * metrics["episodes"]
        metrics |= {
            "iteration": float(self.iteration),
            "failed_episodes": float(failed),
            "steps_per_s": steps / rollout_seconds if rollout_seconds > 0 else 0.0,
            "seconds": elapsed,
            "synthetic_task_share": sum(t.parent_id is not None for t in tasks) / len(tasks)
            if tasks
            else 0.0,
            "tasks_proposed": float(len(decisions)),
            "tasks_accepted": float(sum(d.accepted for d in decisions)),
            "tasks_rejected": float(sum(not d.accepted for d in decisions)),
            **_rejections(decisions),
            "tasks_generation_failures": float(curriculum.generation_failures if curriculum else 0),
            "pool_size": float(len(curriculum.pool if curriculum is not None else self.curriculum)),  # type: ignore[arg-type]
            **{f"train/{k}": float(v) for k, v in update.items()},
            **{f"total/{k}": v for k, v in self.totals.items()},
        }
        await anyio.to_thread.run_sync(self._checkpoint, metrics)  # off the loop; not abandoned if cancelled
        for hook in self.on_metrics:
            hook(metrics)
        return metrics


def _rejections(decisions: Sequence[Decision]) -> dict[str, float]:
    """``tasks_rejected/<why>`` counts: the reason's first words (``duplicate``, ``infeasible``, ...)."""
    counts: dict[str, float] = {}
    for d in decisions:
        if not d.accepted:
            key = "tasks_rejected/" + d.reason.split(":")[0].strip().replace(" ", "_")
            counts[key] = counts.get(key, 0.0) + 1.0
    return counts


class _Progress:
    """A rich progress bar with the latest success rate and reward, only on a terminal."""

    def __init__(self, config: LoopConfig, done: int) -> None:
        self.enabled = config.progress and os.isatty(2)
        self.total = config.budget.iterations
        self.done = done
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]DreamGym[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
            )  # fmt: skip
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self.done, stats="")
        return self

    def update(self, metrics: dict[str, float]) -> None:
        if self._progress is not None:
            stats = (
                f"success {metrics['success_rate']:.0%}  reward {metrics['mean_reward']:.2f}  "
                f"var {metrics['group_reward_variance']:.3f}  pool {int(metrics['pool_size'])}"
            )
            self._progress.update(self._task, advance=1, stats=stats)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


_ITERATION_FILE = "loop-iteration"
"""Written into each checkpoint: the loop iteration it finished."""


def _checkpoint_iteration(directory: Path) -> int | None:
    """The iteration a checkpoint finished (``None`` for one written before checkpoints recorded it)."""
    file = directory / _ITERATION_FILE
    return int(file.read_text()) if file.exists() else None


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
