"""Build every component from a :class:`TrainConfig` and run the DreamGym loop (``dreamgym train``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk.curriculum import Curriculum, TaskPool
from dreamgym_sdk.env import DreamEnv
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.experience.reasoning import ReasoningExperienceModel
from dreamgym_sdk.experience.tasks import TaskVariationGenerator
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.providers.registry import get_provider
from dreamgym_sdk.training.config_file import TrainConfig
from dreamgym_sdk.training.grpo import GRPOBackend
from dreamgym_sdk.training.loop import DreamGymTrainer, MetricsHook
from dreamgym_sdk.training.ppo import PPOBackend
from dreamgym_sdk.types import Task

__all__ = ["read_tasks", "train"]


def read_tasks(path: str | Path) -> list[Task]:
    """Seed tasks from a JSONL file (one :class:`Task` object per line).

    Raises:
        ConfigError: the file is missing, empty, or a line is not a valid task (the line is named).
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"task file {file} does not exist")
    tasks: list[Task] = []
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append(Task.model_validate_json(line))
        except ValueError as exc:
            raise ConfigError(f"{file}, line {number}: not a task: {exc}") from exc
    if not tasks:
        raise ConfigError(f"task file {file} has no tasks")
    return tasks


async def train(config: TrainConfig, *, on_metrics: Sequence[MetricsHook] = ()) -> list[dict[str, float]]:
    """Train ``config.policy`` in the synthetic environment described by ``config``; resumable."""
    run_dir = Path(config.run_dir)
    pool = TaskPool(read_tasks(config.tasks), path=run_dir / "tasks.jsonl")
    exp = config.experience
    overrides: dict[str, Any] = {"api_base": exp.api_base} if exp.api_base else {}
    provider = get_provider(exp.model, **overrides)
    policy = await anyio.to_thread.run_sync(
        lambda: HFPolicy.from_pretrained(config.policy.path, config.policy.sampling)
    )
    backend = (
        GRPOBackend(policy, config.grpo) if config.algorithm == "grpo" else PPOBackend(policy, config.ppo)
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(provider)
        retriever = None
        if config.replay.uri is not None:
            from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

            replay = ReplayConfig(uri=config.replay.uri, embedder=config.replay.embedder)
            retriever = await stack.enter_async_context(LanceDBReplayBuffer(replay))
        model = ReasoningExperienceModel(provider, retriever=retriever, config=exp.reasoning)
        curriculum = Curriculum(pool, TaskVariationGenerator(provider), config.curriculum)
        trainer = DreamGymTrainer(
            env_factory=lambda group: DreamEnv(model, max_steps=exp.max_steps, group=group),
            policy=policy,
            backend=backend,
            curriculum=curriculum,
            run_dir=run_dir,
            config=config.loop,
            on_metrics=on_metrics,
        )
        return await trainer.run()
