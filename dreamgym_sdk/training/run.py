"""Build every component from a :class:`TrainConfig` and run the DreamGym loop (``dreamgym train``).

The experience model is built as everywhere else in the SDK, by
:func:`~dreamgym_sdk.grounding.open_grounded_model`: a directory written by ``dreamgym distill`` is opened
with the settings on its card and grounded by a buffer embedded with the card's embedder; any other model
string is a provider wrapped in a :class:`~dreamgym_sdk.experience.ReasoningExperienceModel` configured by
``experience.reasoning``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk.curriculum import Curriculum, TaskPool
from dreamgym_sdk.env import DreamEnv, TaskLike
from dreamgym_sdk.errors import ConfigError, NothingToTrainError
from dreamgym_sdk.experience.base import ExperienceModel
from dreamgym_sdk.experience.reasoning import ReasoningExperienceModel
from dreamgym_sdk.experience.tasks import TaskVariationGenerator
from dreamgym_sdk.grounding import distilled_model_dir, open_grounded_model
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.rollout import EnvFactory
from dreamgym_sdk.training.config_file import TrainConfig
from dreamgym_sdk.training.grpo import GRPOBackend
from dreamgym_sdk.training.loop import DreamGymTrainer, MetricsHook
from dreamgym_sdk.training.ppo import PPOBackend
from dreamgym_sdk.types import Episode, Task

__all__ = [
    "ADMISSIBLE_ENTRY_POINTS",
    "admissible_for",
    "distilled_model_dir",
    "dream_env_factory",
    "open_experience_model",
    "read_tasks",
    "train",
]


def read_tasks(path: str | Path, *, require_initial_state: bool = False) -> list[Task]:
    """Seed tasks from a JSONL file (one :class:`Task` object per line).

    Args:
        path: the file.
        require_initial_state: every task must carry an ``initial_state`` (a distilled experience model
            cannot imagine one).

    Raises:
        ConfigError: the file is missing, empty, or a line is not a valid task (the line is named); with
            ``require_initial_state``, a task has no initial state.
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"task file {file} does not exist")
    tasks: list[Task] = []
    missing: list[int] = []
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            task = Task.model_validate_json(line)
        except ValueError as exc:
            raise ConfigError(f"{file}, line {number}: not a task: {exc}") from exc
        tasks.append(task)
        if task.initial_state is None:
            missing.append(number)
    if not tasks:
        raise ConfigError(f"task file {file} has no tasks")
    if require_initial_state and missing:
        raise ConfigError(
            f"{file}: {len(missing)} of {len(tasks)} task(s) have no initial_state (first on line "
            f"{missing[0]}); a distilled experience model cannot imagine one. Make tasks with their real "
            "initial states (TextWorld games: `dreamgym collect tasks --games-from GAMES -o tasks.jsonl`)"
        )
    return tasks


@contextlib.asynccontextmanager
async def open_experience_model(config: TrainConfig) -> AsyncGenerator[ReasoningExperienceModel]:
    """The experience model ``config.experience`` describes, grounded on ``config.replay`` (see
    :func:`~dreamgym_sdk.grounding.open_grounded_model`)."""
    async with open_grounded_model(config.experience, config.replay) as model:
        yield model


ADMISSIBLE_ENTRY_POINTS = "dreamgym_sdk.admissible"
"""Entry-point group through which an integration lists the admissible actions of its tasks' states: the
entry named after ``Task.environment`` is a callable ``(task) -> (state -> actions)``. TextWorld's is
:func:`~dreamgym_sdk.integrations.textworld.task_admissible`; declare your own in your package's
``pyproject.toml`` (``[project.entry-points."dreamgym_sdk.admissible"]``)."""


@functools.cache
def _admissible_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ADMISSIBLE_ENTRY_POINTS)}


def admissible_for(task: TaskLike | None) -> Callable[[str], Sequence[str]] | None:
    """What lists the admissible actions of a state of ``task`` in the synthetic environment: the
    :data:`ADMISSIBLE_ENTRY_POINTS` entry of its environment (TextWorld's command grammar for TextWorld
    tasks, of the game kind the task's spec names), nothing for environments without one."""
    if not isinstance(task, Task) or (entry := _admissible_plugins().get(task.environment)) is None:
        return None
    return entry.load()(task)


class _TaskDreamEnv(DreamEnv):
    """A :class:`DreamEnv` that puts the admissible actions of each task's states into ``info`` (see
    :func:`admissible_for`), so a policy can decode under the admissible-action constraint."""

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self.admissible = admissible_for(task)
        return await super().reset(task=task, seed=seed, options=options)


def dream_env_factory(model: ExperienceModel, max_steps: int) -> EnvFactory:
    """A fresh synthetic environment per group, listing TextWorld tasks' admissible commands."""
    return lambda group: _TaskDreamEnv(model, max_steps=max_steps, group=group)


def _success(episode: Episode) -> float:
    return float(episode.success)


async def train(config: TrainConfig, *, on_metrics: Sequence[MetricsHook] = ()) -> list[dict[str, float]]:
    """Train ``config.policy`` in the synthetic environment described by ``config``; resumable.

    Raises:
        ConfigError: see :func:`read_tasks` and :func:`open_experience_model`.
        NothingToTrainError: an iteration played no usable episode, or no iteration of the run took an
            optimizer step (unless ``loop.allow_idle_iterations``).
    """
    run_dir = Path(config.run_dir)
    distilled = distilled_model_dir(config.experience.model) is not None
    pool = TaskPool(read_tasks(config.tasks, require_initial_state=distilled), path=run_dir / "tasks.jsonl")
    policy = await anyio.to_thread.run_sync(
        lambda: HFPolicy.from_pretrained(config.policy.path, config.policy.sampling)
    )
    if config.algorithm == "grpo":
        reward = _success if config.reward == "success" else None
        backend: GRPOBackend | PPOBackend = GRPOBackend(policy, config.grpo, reward=reward)
    else:
        backend = PPOBackend(policy, config.ppo)
    generate = config.generate_tasks if config.generate_tasks is not None else not distilled
    async with open_experience_model(config) as model:
        curriculum: Curriculum | TaskPool = (
            Curriculum(pool, TaskVariationGenerator(model.provider), config.curriculum) if generate else pool
        )
        trainer = DreamGymTrainer(
            env_factory=dream_env_factory(model, config.experience.max_steps),
            policy=policy,
            backend=backend,
            curriculum=curriculum,
            run_dir=run_dir,
            config=config.loop,
            on_metrics=on_metrics,
        )
        history = await trainer.run()
    trained = any(m.get("train/optimizer_steps", 0.0) > 0 for m in history)
    if history and not trained and not config.loop.allow_idle_iterations:
        raise NothingToTrainError(
            f"{len(history)} iteration(s) took no optimizer step: the policy did not change (e.g. every "
            "GRPO group had equal rewards; see train/* in metrics.jsonl); loop.allow_idle_iterations = "
            "true accepts such a run"
        )
    return history
