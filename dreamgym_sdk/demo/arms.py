"""The demo's policies: behaviour cloning, GRPO in the real or the synthetic environment, evaluation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk.curriculum import Curriculum, CurriculumConfig, TaskGenerator, TaskPool
from dreamgym_sdk.demo.config import DemoConfig
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig
from dreamgym_sdk.rollout import EnvFactory
from dreamgym_sdk.training.evaluate import EvalReport, evaluate
from dreamgym_sdk.types import Episode, Task, Transition

__all__ = [
    "ArmRun",
    "arm_dirs",
    "clone_policy",
    "evaluate_policy",
    "load_policy",
    "policy_config",
    "train_rl",
]


def policy_config(seed: int, *, greedy: bool = False) -> HFPolicyConfig:
    """How every demo policy prompts and samples: one transcript per episode, decoding restricted to the
    admissible actions (listed by the real game, derived from the state in the synthetic one)."""
    return HFPolicyConfig(
        prompt_style="transcript",
        show_admissible=False,
        constrain_to_admissible=True,
        temperature=0.0 if greedy else 1.0,
        max_new_tokens=24,
        seed=seed,
        record_samples=not greedy,
    )


async def load_policy(path: Path | str, config: DemoConfig, seed: int, *, greedy: bool = False) -> HFPolicy:
    """Load the policy saved in ``path`` onto ``config.device``, set up by :func:`policy_config`."""
    return await anyio.to_thread.run_sync(
        lambda: HFPolicy.from_pretrained(path, policy_config(seed, greedy=greedy), device=config.device)
    )


async def save_policy(policy: HFPolicy, directory: Path) -> None:
    """Save the policy's model and tokenizer (atomically: a crash leaves no half-saved directory)."""
    partial = directory.with_name(directory.name + ".partial")

    def save() -> None:
        policy.save_pretrained(partial)  # with how it acts: `dreamgym eval --policy hf:DIR` reproduces it
        partial.replace(directory)

    await anyio.to_thread.run_sync(save)


async def clone_policy(
    config: DemoConfig, offline: Sequence[Episode], corpus: Sequence[str], seed: int, directory: Path
) -> Path:
    """The SFT policy: a fresh (or the configured) model trained by behaviour cloning on the offline
    episodes. Every RL arm starts from it."""
    from dreamgym_sdk.policies.bc import BCConfig, TinyPolicyConfig, behaviour_clone, build_policy_model

    if await anyio.Path(directory).exists():
        return directory
    start = config.policy_model
    if start is None:
        base = directory.with_name(directory.name + ".init")
        start = str(
            await anyio.to_thread.run_sync(
                lambda: build_policy_model(base, corpus, TinyPolicyConfig(seed=seed))
            )
        )
    policy = await load_policy(start, config, seed)
    await behaviour_clone(
        policy, offline, BCConfig(epochs=config.bc_epochs, learning_rate=config.bc_learning_rate, seed=seed)
    )
    await save_policy(policy, directory)
    return directory


@dataclass
class ArmRun:
    """What one RL arm did: its policy, the metrics of every iteration and its real-transition count."""

    policy_dir: Path
    metrics: list[dict[str, float]] = field(default_factory=list[dict[str, float]])

    @property
    def real_transitions(self) -> int:
        """Real-environment transitions over every iteration (the ``real_transitions`` metric, summed)."""
        return int(sum(m.get("real_transitions", 0.0) for m in self.metrics))

    @property
    def seconds(self) -> float:
        """Seconds spent over every iteration (the ``seconds`` metric, summed)."""
        return sum(m.get("seconds", 0.0) for m in self.metrics)


def arm_dirs(directory: Path) -> tuple[Path, Path]:
    """Where an RL arm in ``directory`` keeps its run (metrics, checkpoints) and its finished policy."""
    return directory / "run", directory / "policy"


async def train_rl(
    config: DemoConfig,
    *,
    start: Path,
    env_factory: EnvFactory,
    tasks: Sequence[Task],
    directory: Path,
    iterations: int,
    tasks_per_iteration: int,
    seed: int,
    real_transitions: int | None = None,
    variations: TaskGenerator | None = None,
) -> ArmRun:
    """GRPO from the policy at ``start`` in the environments ``env_factory`` makes; resumable. With
    ``variations``, a curriculum grows the tasks (see :attr:`DemoConfig.curriculum`)."""
    from dreamgym_sdk.training.config import GRPOBackendConfig
    from dreamgym_sdk.training.grpo import GRPOBackend
    from dreamgym_sdk.training.loop import Budget, DreamGymTrainer, LoopConfig

    run_dir, policy_dir = arm_dirs(directory)
    if not await anyio.Path(policy_dir).exists():
        policy = await load_policy(start, config, seed)
        backend = GRPOBackend(
            policy,
            GRPOBackendConfig(
                group_size=config.group_size,
                learning_rate=config.rl_learning_rate,
                beta=config.rl_kl,
                seed=seed,
                device=config.device,
            ),
            reward=(lambda e: float(e.success)) if config.rl_reward == "success" else None,
        )

        pool = TaskPool(tasks, path=run_dir / "tasks.jsonl")
        curriculum = pool
        if variations is not None:
            curriculum = Curriculum(
                pool,
                variations,
                CurriculumConfig(group_size=config.group_size, synthetic_share=config.synthetic_task_share),
            )

        def trainer(budget: int, tasks_now: int = tasks_per_iteration) -> DreamGymTrainer:
            # resumes from run_dir: ``budget`` counts every iteration
            return DreamGymTrainer(
                env_factory=env_factory,
                policy=policy,
                backend=backend,
                curriculum=curriculum,
                run_dir=run_dir,
                config=LoopConfig(
                    tasks_per_iteration=tasks_now,
                    group_size=config.group_size,
                    seed=seed,
                    budget=Budget(iterations=budget),
                    allow_idle_iterations=True,  # the demo reports idle arms in its summary instead
                ),
            )

        if real_transitions is None:
            await trainer(iterations).run()
        else:  # a hard cap: an iteration plays only as many tasks as cannot cross it, whatever happens
            worst_case = config.group_size * config.max_steps  # real transitions of one task's group
            for budget in range(1, iterations + 1):
                done = await anyio.to_thread.run_sync(_read_metrics, run_dir / "metrics.jsonl")
                left = real_transitions - sum(int(m["real_transitions"]) for m in done)
                tasks_now = min(tasks_per_iteration, left // worst_case)
                if tasks_now == 0:
                    break
                await trainer(budget, tasks_now).run()
        await save_policy(policy, policy_dir)
    return ArmRun(policy_dir, _read_metrics(run_dir / "metrics.jsonl"))


def _read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def evaluate_policy(
    config: DemoConfig, policy: Policy, tasks: Sequence[Task], seed: int, path: Path
) -> EvalReport:
    """Success on the held-out real games (cached in ``path``)."""
    if await anyio.Path(path).exists():
        cached = EvalReport.model_validate_json(await anyio.Path(path).read_text())
        if cached.outcomes:  # runs made before reports kept per-game outcomes are evaluated again
            return cached
    report = await evaluate(
        real_env_factory(config),
        policy,
        tasks,
        episodes_per_task=config.eval_episodes_per_game,
        max_concurrency=16,
        seed=seed,
    )
    await anyio.Path(path).write_text(report.model_dump_json(indent=2))
    return report


def real_env_factory(config: DemoConfig) -> EnvFactory:
    from dreamgym_sdk.integrations.textworld import TextWorldEnv

    return lambda group: TextWorldEnv(max_steps=config.max_steps, include_facts=False)


def dream_env_factory(config: DemoConfig, model: Any) -> EnvFactory:
    from dreamgym_sdk.env import DreamEnv
    from dreamgym_sdk.integrations.textworld import admissible_commands

    return lambda group: DreamEnv(
        model, max_steps=config.max_steps, environment="textworld", admissible=admissible_commands
    )


def corpus_of(offline: Sequence[Transition], tasks: Sequence[Task]) -> list[str]:
    """Texts the tiny policy's tokenizer is trained on: instructions, states and actions."""
    texts = [t.instruction for t in tasks]
    for t in offline:
        texts += [t.state, t.action, t.next_state]
    return texts
