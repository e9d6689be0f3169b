"""Evaluate a policy in any environment: success rate with a confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, RolloutRunner
from dreamgym_sdk.types import Episode, Source, Task

__all__ = ["EvalReport", "evaluate", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for the default ``z``); ``(0, 1)`` when ``n=0``.

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0% and 100%.
    """
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval contains p in exact arithmetic; rounding can leave 6/6 at 0.9999999999999999.
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


class EvalReport(BaseModel):
    """Outcome of :func:`evaluate`."""

    model_config = ConfigDict(frozen=True)

    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    """Wilson 95% interval of the success rate."""
    mean_reward: float
    mean_steps: float
    real_transitions: int
    """Transitions taken in real environments during the evaluation."""

    @classmethod
    def of(cls, episodes: Sequence[Episode]) -> EvalReport:
        n = len(episodes)
        successes = sum(e.success for e in episodes)
        return cls(
            episodes=n,
            successes=successes,
            success_rate=successes / n if n else 0.0,
            ci95=wilson_interval(successes, n),
            mean_reward=sum(e.total_reward for e in episodes) / n if n else 0.0,
            mean_steps=sum(len(e) for e in episodes) / n if n else 0.0,
            real_transitions=sum(len(e) for e in episodes if e.source is Source.REAL),
        )


async def evaluate(
    env_factory: EnvFactory,
    policy: Policy,
    tasks: Sequence[Task],
    *,
    episodes_per_task: int = 1,
    max_concurrency: int = 8,
    seed: int | None = 0,
    bus: EventBus | None = None,
) -> EvalReport:
    """Run ``policy`` on every task (``episodes_per_task`` times) and report its success rate."""
    runner = RolloutRunner(env_factory, policy, bus=bus, max_concurrency=max_concurrency)
    return EvalReport.of(await runner.run(tasks, group_size=episodes_per_task, seed=seed))
