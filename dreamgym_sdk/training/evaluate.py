"""Evaluate a policy in any environment: success rate with a confidence interval, and paired comparisons
of two policies evaluated on the same tasks."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.env import Env
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import EnvFactory, RolloutRunner, make_env
from dreamgym_sdk.types import Episode, Source, Task

__all__ = [
    "ActionReplay",
    "EvalReport",
    "PairedDifference",
    "Wm2RealReport",
    "evaluate",
    "paired_difference",
    "replay_actions",
    "wilson_interval",
    "wm2real",
]


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
    outcomes: dict[str, list[bool]] = Field(default_factory=dict[str, list[bool]])
    """Task id → success of each of its episodes: what :func:`paired_difference` compares."""

    @classmethod
    def of(cls, episodes: Sequence[Episode]) -> EvalReport:
        """The report of ``episodes``: counts, success rate and interval, means, per-task outcomes."""
        n = len(episodes)
        outcomes: dict[str, list[bool]] = {}
        for e in episodes:
            outcomes.setdefault(e.task.id, []).append(e.success)
        successes = sum(e.success for e in episodes)
        return cls(
            episodes=n,
            successes=successes,
            success_rate=successes / n if n else 0.0,
            ci95=wilson_interval(successes, n),
            mean_reward=sum(e.total_reward for e in episodes) / n if n else 0.0,
            mean_steps=sum(len(e) for e in episodes) / n if n else 0.0,
            real_transitions=sum(len(e) for e in episodes if e.source is Source.REAL),
            outcomes=outcomes,
        )


class PairedDifference(BaseModel):
    """Success of policy A minus policy B on the tasks both played, with a paired bootstrap interval."""

    model_config = ConfigDict(frozen=True)

    difference: float
    """Mean over tasks of (A's success rate on the task − B's)."""
    ci95: tuple[float, float]
    """Percentile interval of the mean difference, resampling tasks (each keeps its pair of outcomes)."""
    tasks: int
    """Tasks both policies played (pooled over runs, each run's tasks counted apart)."""


def paired_difference(
    a: Sequence[EvalReport] | EvalReport,
    b: Sequence[EvalReport] | EvalReport,
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """A − B in success rate, paired by task: each task's difference of success rates, averaged, with a
    bootstrap 95% interval that resamples tasks.

    Several reports per side are runs of the same comparison (seeds): ``a[i]`` is paired with ``b[i]``, and
    the task differences of every run are pooled. Pairing removes the variance of how hard each task is, so
    the interval is much narrower than the two success rates' intervals suggest.

    ```python
    diff = paired_difference(dreamgym_report, sft_report)
    print(f"{diff.difference:+.1%} [{diff.ci95[0]:+.1%}, {diff.ci95[1]:+.1%}]")
    ```

    Raises:
        ValueError: the two sides have different numbers of runs, or no task in common.
    """
    runs_a = [a] if isinstance(a, EvalReport) else list(a)
    runs_b = [b] if isinstance(b, EvalReport) else list(b)
    if len(runs_a) != len(runs_b):
        raise ValueError(f"{len(runs_a)} run(s) of A against {len(runs_b)} of B: pair them run by run")
    pairs = zip(runs_a, runs_b, strict=True)
    diffs = [d for ra, rb in pairs for d in _task_differences(ra.outcomes, rb.outcomes)]
    if not diffs:
        raise ValueError("the reports share no task with outcomes: nothing to pair")
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(statistics.fmean(rng.choices(diffs, k=n)) for _ in range(resamples))
    low, high = means[int(0.025 * (resamples - 1))], means[int(0.975 * (resamples - 1))]
    return PairedDifference(difference=statistics.fmean(diffs), ci95=(low, high), tasks=n)


def _task_differences(a: Mapping[str, Sequence[bool]], b: Mapping[str, Sequence[bool]]) -> list[float]:
    return [statistics.fmean(a[t]) - statistics.fmean(b[t]) for t in a if t in b and a[t] and b[t]]


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


class ActionReplay(BaseModel):
    """An episode's actions played again, in order, in another environment (a synthetic episode in the
    real game: WM2Real), and where the two first disagree."""

    model_config = ConfigDict(frozen=True)

    episode_id: str
    task_id: str
    steps: int
    """Steps the episode took where it was recorded."""
    success: bool
    """Whether the episode succeeded where it was recorded."""
    replay_steps: int
    """Steps replayed before the replay environment ended the episode or the actions ran out."""
    replay_success: bool
    """Whether the same actions succeed in the replay environment."""
    divergence: int | None = None
    """The first step whose reward or ending differs between the two (``None``: they agree throughout)."""
    divergent_action: str | None = None
    recorded_observation: str | None = None
    """What the recorded episode showed after the divergent action."""
    replay_observation: str | None = None
    """What the replay environment showed after it."""


async def replay_actions(episode: Episode, env: Env, *, seed: int | None = None) -> ActionReplay:
    """Play ``episode``'s actions, in order, in ``env`` (reset with the episode's task), until ``env`` ends
    the episode or the actions run out, and report where rewards or endings first differ.

    The step results are compared to the recorded transitions with a tolerance of 1e-6 on rewards.
    """
    replay_steps, replay_success, divergence = 0, False, None
    divergent: dict[str, str | None] = {}
    try:
        await env.reset(task=episode.task, seed=seed)
        for step, recorded in enumerate(episode.transitions):
            result = await env.step(recorded.action)
            replay_steps = step + 1
            replay_success = bool(result.info.get("success", False))
            agrees = abs(result.reward - recorded.reward) <= 1e-6 and result.terminated == recorded.terminated
            if divergence is None and not agrees:
                divergence = step
                divergent = {
                    "divergent_action": recorded.action,
                    "recorded_observation": recorded.next_state,
                    "replay_observation": result.observation,
                }
            if result.done:
                break
    finally:
        await env.close()
    if divergence is None and replay_steps < len(episode.transitions):
        divergence = replay_steps  # the replay ended while the recorded episode went on
        divergent = {"divergent_action": episode.transitions[replay_steps].action}
    return ActionReplay(
        episode_id=episode.id,
        task_id=episode.task.id,
        steps=len(episode),
        success=episode.success,
        replay_steps=replay_steps,
        replay_success=replay_success,
        divergence=divergence,
        **divergent,
    )


class Wm2RealReport(BaseModel):
    """Synthetic episodes replayed in the real environment (Word2World's WM2Real)."""

    model_config = ConfigDict(frozen=True)

    episodes: int
    synthetic_successes: int
    real_successes_of_synthetic: int
    """Synthetic successes whose actions also succeed in the real environment."""
    wm2real: float
    """``real_successes_of_synthetic / synthetic_successes`` (0 when nothing succeeded): how often a success
    the experience model grants is one the real environment grants too."""
    agreement: float
    """Share of episodes whose rewards and endings agree at every replayed step."""
    divergent_verbs: dict[str, int]
    """First word of the action at each episode's first divergence, counted: where the model errs."""
    replays: list[ActionReplay]


async def wm2real(
    episodes: Sequence[Episode], env_factory: EnvFactory, *, max_concurrency: int = 8
) -> Wm2RealReport:
    """Replay every synthetic episode's actions in a real environment (one from ``env_factory`` each)."""
    limit = anyio.Semaphore(max_concurrency)
    replays: list[ActionReplay | None] = [None] * len(episodes)

    async def one(i: int, episode: Episode) -> None:
        async with limit:
            replays[i] = await replay_actions(episode, await make_env(env_factory, i), seed=episode.seed)

    async with anyio.create_task_group() as tg:
        for i, episode in enumerate(episodes):
            tg.start_soon(one, i, episode)
    done = [r for r in replays if r is not None]
    granted = [r for r in done if r.success]
    confirmed = sum(r.replay_success for r in granted)
    verbs = Counter((r.divergent_action or "").split(" ", 1)[0] for r in done if r.divergence is not None)
    return Wm2RealReport(
        episodes=len(done),
        synthetic_successes=len(granted),
        real_successes_of_synthetic=confirmed,
        wm2real=confirmed / len(granted) if granted else 0.0,
        agreement=sum(r.divergence is None for r in done) / len(done) if done else 0.0,
        divergent_verbs=dict(verbs.most_common()),
        replays=done,
    )
