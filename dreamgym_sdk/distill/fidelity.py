"""Fidelity evaluation: replay held-out real transitions through an experience model and score it.

For every reference transition the model gets exactly what a DreamEnv would give it at that step of the
real episode (the task, the real history so far, the state and the action) and predicts the next state,
reward and termination; :mod:`~dreamgym_sdk.distill.metrics` compares them with what really happened.
Several prompt variants (``full``, ``no-history``, ``no-retrieval``, ``no-reasoning``: the paper's
ablations) are evaluated in one run, each with its own model instance from ``open_model``; optionally an
LLM judge (:class:`~dreamgym_sdk.experience.FidelityJudge`) scores a sample of the predicted transitions.

References must come from tasks (games) the model has never been trained on, or retrieval may hand it the
answer: :attr:`FidelityRun.overlapping_tasks` counts the tasks shared with the model's own replay data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.distill.dataset import VARIANTS, Variant
from dreamgym_sdk.distill.ground_truth import episodes_of
from dreamgym_sdk.distill.metrics import (
    DEFAULT_VOLATILE,
    FidelityMetrics,
    Reference,
    ScoredPrediction,
    aggregate,
    score_one,
)
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceRequest
from dreamgym_sdk.experience.judge import FidelityJudge, FidelityReport, sample_transitions
from dreamgym_sdk.experience.parsing import RewardMode
from dreamgym_sdk.types import Source, Task, Transition

__all__ = ["FidelityConfig", "FidelityRun", "VariantResult", "evaluate_fidelity"]

ModelOpener = Callable[[Variant], AbstractAsyncContextManager[ExperienceModel]]
"""``open_model(variant)``: an async context manager giving the experience model for a prompt variant."""


class FidelityConfig(BaseModel):
    """Settings of :func:`evaluate_fidelity`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variants: tuple[Variant, ...] = ("full",)
    """Prompt variants to evaluate, in order."""
    reward_mode: RewardMode = "dense"
    """How reference rewards are read (as the model was trained: see the model card)."""
    volatile: tuple[str, ...] = DEFAULT_VOLATILE
    """State line prefixes ignored when checking that an invalid action kept the state."""
    concurrency: int = Field(default=32, ge=1)
    """Predictions in flight at once (a local ``hf:`` model batches them)."""
    seed: int = 0
    """Sampling seed of the requests and of the judge's sample."""
    judge_sample: int = Field(default=50, ge=1)
    """How many predicted transitions the judge scores per variant (when a judge is given)."""
    keep_predictions: bool = True
    """Keep every scored prediction in the result (for inspection; the JSON gets larger)."""


class VariantResult(BaseModel):
    """The fidelity of one prompt variant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: Variant
    metrics: FidelityMetrics
    judge: FidelityReport | None = None
    seconds: float
    """Wall time of the variant's predictions."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    predictions: list[ScoredPrediction] = Field(default_factory=list[ScoredPrediction])


class FidelityRun(BaseModel):
    """Everything :func:`evaluate_fidelity` measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """The evaluated model's string."""
    references: int
    episodes: int
    tasks: int
    overlapping_tasks: int = 0
    """Reference tasks that also appear in the model's own replay data (should be 0)."""
    reward_mode: RewardMode
    results: list[VariantResult]

    def by_variant(self) -> dict[str, VariantResult]:
        """Variant name → result."""
        return {r.variant: r for r in self.results}


def _history(episodes: Mapping[str, Sequence[Transition]], t: Transition) -> tuple[Transition, ...]:
    return tuple(h for h in episodes.get(t.episode_id, ()) if h.step < t.step)


async def evaluate_fidelity(
    references: Sequence[Reference],
    open_model: ModelOpener,
    *,
    model_name: str,
    tasks: Mapping[str, Task] | None = None,
    config: FidelityConfig | None = None,
    judge: FidelityJudge | None = None,
    replay_tasks: set[str] | None = None,
    on_prediction: Callable[[Variant], None] | None = None,
) -> FidelityRun:
    """Predict every reference with each prompt variant and score the predictions.

    ```python
    run = await evaluate_fidelity(
        references, lambda v: open_experience_model("my-model", variant=v), model_name="hf:my-model",
        tasks=tasks, config=FidelityConfig(variants=("full", "no-retrieval")),
    )
    print(run.by_variant()["full"].metrics.reward_accuracy)
    ```

    Args:
        references: held-out real transitions (whole episodes: the earlier steps are the history).
        open_model: gives the experience model of a variant (entered once per variant).
        model_name: recorded in the result.
        tasks: task id → task (instructions); unknown tasks get an empty instruction.
        config: variants, reward mode, concurrency, judge sample.
        judge: also score a sample of each variant's predicted transitions with this LLM judge.
        replay_tasks: the task ids of the model's training data, to count overlaps.
        on_prediction: called after each prediction with its variant (progress bars).

    Raises:
        ValueError: an unknown variant.
        ProviderError: the model's provider failed (unusable answers are scored, not raised).
    """
    cfg = config or FidelityConfig()
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    known_tasks = tasks or {}
    episodes = episodes_of(r.transition for r in references)
    results: list[VariantResult] = []
    for variant in cfg.variants:
        async with open_model(variant) as model:
            results.append(
                await _evaluate_variant(
                    model, variant, references, episodes, known_tasks, cfg, judge, on_prediction
                )
            )
    task_ids = {r.transition.task_id for r in references}
    return FidelityRun(
        model=model_name,
        references=len(references),
        episodes=len(episodes),
        tasks=len(task_ids),
        overlapping_tasks=len(task_ids & (replay_tasks or set())),
        reward_mode=cfg.reward_mode,
        results=results,
    )


async def _evaluate_variant(
    model: ExperienceModel,
    variant: Variant,
    references: Sequence[Reference],
    episodes: Mapping[str, Sequence[Transition]],
    tasks: Mapping[str, Task],
    cfg: FidelityConfig,
    judge: FidelityJudge | None,
    on_prediction: Callable[[Variant], None] | None,
) -> VariantResult:
    scored: list[ScoredPrediction | None] = [None] * len(references)
    usage = [0, 0]
    limiter = anyio.CapacityLimiter(cfg.concurrency)

    async def one(index: int, reference: Reference) -> None:
        t = reference.transition
        request = ExperienceRequest(
            task=tasks.get(t.task_id) or Task(id=t.task_id, instruction="", environment=t.environment),
            state=t.state,
            action=t.action,
            history=_history(episodes, t),
            episode_id=t.episode_id,
            step=t.step,
            seed=cfg.seed + t.step,
        )
        async with limiter:
            try:
                prediction = await model.predict(request)
            except ModelOutputError as exc:
                scored[index] = score_one(
                    reference, None, reward_mode=cfg.reward_mode, volatile=cfg.volatile, error=exc.reason
                )
            else:
                usage[0] += prediction.provenance.prompt_tokens
                usage[1] += prediction.provenance.completion_tokens
                scored[index] = score_one(
                    reference, prediction.output, reward_mode=cfg.reward_mode, volatile=cfg.volatile
                )
        if on_prediction is not None:
            on_prediction(variant)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index, reference in enumerate(references):
            group.start_soon(one, index, reference)
    seconds = time.perf_counter() - started
    done = [s for s in scored if s is not None]
    metrics = aggregate(references, done, reward_mode=cfg.reward_mode, volatile=cfg.volatile)
    report = None
    if judge is not None:
        report = await _judge(judge, references, done, tasks, cfg)
    return VariantResult(
        variant=variant,
        metrics=metrics,
        judge=report,
        seconds=seconds,
        prompt_tokens=usage[0],
        completion_tokens=usage[1],
        predictions=done if cfg.keep_predictions else [],
    )


async def _judge(
    judge: FidelityJudge,
    references: Sequence[Reference],
    scored: Sequence[ScoredPrediction],
    tasks: Mapping[str, Task],
    cfg: FidelityConfig,
) -> FidelityReport:
    synthetic: list[Transition] = []
    for reference, s in zip(references, scored, strict=True):
        out = s.predicted
        if out is None:
            continue
        update: dict[str, Any] = {
            "reasoning": out.reasoning,
            "next_state": out.next_state,
            "reward": out.reward,
            "terminated": out.done,
            "truncated": False,
            "success": out.success,
            "source": Source.SYNTHETIC,
        }
        synthetic.append(reference.transition.model_copy(update=update))
    sample = sample_transitions(synthetic, cfg.judge_sample, seed=cfg.seed)
    context = [r.transition for r in references]
    return await judge.evaluate(sample, context=context, tasks=tasks)
