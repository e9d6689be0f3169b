"""How far the synthetic environment is from the real one, measured on the policy RL starts from.

The SFT policy plays the same training games in both environments (success, episode length, return),
its real episodes are replayed step by step through the experience model (given the real history,
state and action, does it predict the real reward and ending?), and its synthetic episodes' actions are
replayed in the real game (WM2Real: are the successes the model grants real ones, and where do the two
first disagree?). A lenient synthetic environment shows
up as synthetic success far above real success and as shorter episodes: RL there learns shortcuts the
game does not allow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.demo.arms import load_policy, real_env_factory
from dreamgym_sdk.demo.config import DemoConfig
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceModel
from dreamgym_sdk.rollout import EnvFactory, RolloutRunner
from dreamgym_sdk.training.evaluate import EvalReport, wm2real
from dreamgym_sdk.types import Task

__all__ = ["SimRealGap", "measure_gap"]


class SimRealGap(BaseModel):
    """The SFT policy on the same training games, in the real and in the synthetic environment."""

    model_config = ConfigDict(frozen=True)

    real: EvalReport
    synthetic: EvalReport
    synthetic_dropped: int
    """Synthetic episodes lost to unusable experience-model answers."""
    success_gap: float
    """Synthetic minus real success rate (the target is within ±0.10)."""
    length_ratio: float
    """Synthetic over real mean episode length (the target is within 0.8–1.2)."""
    reward_agreement: float
    """Share of the real steps whose reward the experience model predicts, given the real history."""
    done_agreement: float
    """Share of the real steps whose ending (terminated or not) it predicts."""
    success_agreement: float
    """Share of the real steps whose success flag it predicts."""
    steps: int
    """Real steps replayed through the experience model."""
    wm2real: float | None = None
    """Share of the synthetic successes whose actions also win the real game."""
    divergent_verbs: dict[str, int] = Field(default_factory=dict[str, int])
    """Synthetic episodes replayed in the real game, counted by the verb of the first action whose reward
    or ending differs (each replay is in ``gap-replays.jsonl`` beside ``gap.json``)."""


async def measure_gap(
    config: DemoConfig,
    *,
    policy_dir: Path,
    tasks: Sequence[Task],
    dream_envs: EnvFactory,
    model: ExperienceModel,
    seed: int,
    path: Path,
) -> SimRealGap:
    """Measure (or read back from ``path``) the sim-to-real gap of the policy in ``policy_dir``."""
    if await anyio.Path(path).exists():
        return SimRealGap.model_validate_json(await anyio.Path(path).read_text())
    from dreamgym_sdk.distill.fidelity import evaluate_fidelity
    from dreamgym_sdk.distill.metrics import Reference

    policy = await load_policy(policy_dir, config, seed)
    real = await RolloutRunner(real_env_factory(config), policy, max_concurrency=16).run(
        tasks, group_size=2, seed=seed
    )
    runner = RolloutRunner(dream_envs, policy, max_concurrency=64, skip_errors=(ModelOutputError,))
    synthetic = await runner.run(tasks, group_size=2, seed=seed)
    replayed = await wm2real(synthetic, real_env_factory(config))
    lines = "".join(replay.model_dump_json() + "\n" for replay in replayed.replays)
    await anyio.Path(path.with_name("gap-replays.jsonl")).write_text(lines)
    references = [Reference(t) for e in real for t in e.transitions]

    @contextlib.asynccontextmanager
    async def shared(_: object):  # the open model, for every variant asked for (only "full" here)
        yield model

    fidelity = await evaluate_fidelity(
        references, shared, model_name="experience model", tasks={t.id: t for t in tasks}
    )
    metrics = fidelity.results[0].metrics
    real_report, synthetic_report = EvalReport.of(real), EvalReport.of(synthetic)
    gap = SimRealGap(
        real=real_report,
        synthetic=synthetic_report,
        synthetic_dropped=len(runner.failures),
        success_gap=synthetic_report.success_rate - real_report.success_rate,
        length_ratio=synthetic_report.mean_steps / max(real_report.mean_steps, 1e-9),
        reward_agreement=metrics.reward_accuracy,
        done_agreement=metrics.done_accuracy,
        success_agreement=metrics.success_accuracy,
        steps=metrics.n,
        wm2real=replayed.wm2real,
        divergent_verbs=replayed.divergent_verbs,
    )
    await anyio.Path(path).write_text(gap.model_dump_json(indent=2))
    return gap
