"""Fidelity metrics: how closely an experience model's predictions match what the real environment did.

Pure functions over (reference, prediction) pairs, so they can be checked by hand:

- **reward accuracy**: the predicted reward equals the reference's (within ``1e-6``); the reference
  reward follows the reward mode (:func:`~dreamgym_sdk.distill.target_reward`);
- **done / success accuracy**: the predicted ``done`` equals the reference's *termination* (won or lost;
  a truncation by a step limit is not the model's to predict), ``success`` equals the reference's;
- **next-state exact match**: equal after stripping each line and dropping blank lines;
- **next-state token F1**: the harmonic mean of token precision and recall, tokens being lower-cased
  words and single punctuation marks counted with multiplicity (SQuAD-style); two empty states score 1;
- **invalid-action handling**, over the steps whose action the environment did not admit: does the model
  keep the state (the next state equals the current one once the ``volatile`` lines, such as the game's
  ``feedback:`` line, are ignored) and give reward 0 without ending the episode?

A prediction that could not be obtained (the model's answer stayed unusable) counts as wrong everywhere
and scores F1 0: accuracies are over *all* references.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.distill.dataset import target_reward
from dreamgym_sdk.experience.base import ExperienceOutput
from dreamgym_sdk.experience.parsing import RewardMode
from dreamgym_sdk.types import Transition

__all__ = [
    "DEFAULT_VOLATILE",
    "FidelityMetrics",
    "InvalidActionMetrics",
    "PositiveRecall",
    "Reference",
    "ScoredPrediction",
    "exact_match",
    "normalise_state",
    "score_predictions",
    "state_kept",
    "state_tokens",
    "token_f1",
]

DEFAULT_VOLATILE: tuple[str, ...] = ("feedback:",)
"""Line prefixes ignored when deciding whether a state was kept (the game's answer always changes)."""

_TOKEN = re.compile(r"\w+|[^\w\s]")
_REWARD_TOLERANCE = 1e-6


def normalise_state(text: str) -> str:
    """``text`` with each line stripped and blank lines removed."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def state_tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks of ``text``."""
    return _TOKEN.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """Token F1 of ``prediction`` against ``reference`` (1.0 when both have no tokens)."""
    pred, ref = state_tokens(prediction), state_tokens(reference)
    if not pred and not ref:
        return 1.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> bool:
    """Whether the two states are equal after :func:`normalise_state`."""
    return normalise_state(prediction) == normalise_state(reference)


def _stable_lines(text: str, volatile: Sequence[str]) -> list[str]:
    return [line for line in normalise_state(text).splitlines() if not line.startswith(tuple(volatile))]


def state_kept(state: str, next_state: str, *, volatile: Sequence[str] = DEFAULT_VOLATILE) -> bool:
    """Whether ``next_state`` equals ``state`` apart from lines starting with a ``volatile`` prefix."""
    return _stable_lines(state, volatile) == _stable_lines(next_state, volatile)


@dataclass(frozen=True, slots=True)
class Reference:
    """A real transition to predict, with what the environment knew about it."""

    transition: Transition
    action_admissible: bool | None = None
    """Whether the environment admitted the action (``None`` when unknown)."""


class ScoredPrediction(BaseModel):
    """One reference and its prediction, compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: str
    answered: bool
    """Whether the model produced a usable answer."""
    reward_ok: bool
    done_ok: bool
    success_ok: bool
    exact: bool
    f1: float
    invalid_action: bool | None
    """The action was not admissible (``None``: unknown)."""
    kept_state: bool | None
    """For an answered prediction: whether it kept the current state (see :func:`state_kept`)."""
    predicted: ExperienceOutput | None = None
    error: str | None = None


class InvalidActionMetrics(BaseModel):
    """How the model handles actions the environment did not admit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int
    """References whose action was not admissible."""
    reward_zero: float | None
    """Share of them predicted with reward 0."""
    state_kept: float | None
    """Share of them predicted with the state kept."""
    not_done: float | None
    """Share of them predicted without ending the episode."""
    reference_state_kept: float | None
    """Share of them where the real environment kept the state (the ceiling for ``state_kept``)."""


class PositiveRecall(BaseModel):
    """The rare events: how many the reference has, and the share the model got right."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reward: int
    """References with a positive reward."""
    reward_recall: float | None
    done: int
    done_recall: float | None
    success: int
    success_recall: float | None


class FidelityMetrics(BaseModel):
    """The fidelity of one model (one prompt variant) on a set of references."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    answered: int
    """References with a usable answer (the others count as wrong)."""
    reward_accuracy: float
    done_accuracy: float
    success_accuracy: float
    next_state_exact: float
    next_state_f1: float
    positives: PositiveRecall
    invalid_actions: InvalidActionMetrics


def _mean(values: Sequence[bool | float]) -> float | None:
    return sum(float(v) for v in values) / len(values) if values else None


def score_one(
    reference: Reference,
    prediction: ExperienceOutput | None,
    *,
    reward_mode: RewardMode = "dense",
    volatile: Sequence[str] = DEFAULT_VOLATILE,
    error: str | None = None,
) -> ScoredPrediction:
    """Compare one prediction (``None``: no usable answer) with its reference."""
    t = reference.transition
    invalid = None if reference.action_admissible is None else not reference.action_admissible
    if prediction is None:
        return ScoredPrediction(
            transition_id=t.id, answered=False, reward_ok=False, done_ok=False, success_ok=False,
            exact=False, f1=0.0, invalid_action=invalid, kept_state=None, error=error,
        )  # fmt: skip
    return ScoredPrediction(
        transition_id=t.id,
        answered=True,
        reward_ok=abs(prediction.reward - target_reward(t, reward_mode)) <= _REWARD_TOLERANCE,
        done_ok=prediction.done == t.terminated,
        success_ok=prediction.success == t.success,
        exact=exact_match(prediction.next_state, t.next_state),
        f1=token_f1(prediction.next_state, t.next_state),
        invalid_action=invalid,
        kept_state=state_kept(t.state, prediction.next_state, volatile=volatile),
        predicted=prediction,
    )


def aggregate(
    references: Sequence[Reference],
    scored: Sequence[ScoredPrediction],
    *,
    reward_mode: RewardMode = "dense",
    volatile: Sequence[str] = DEFAULT_VOLATILE,
) -> FidelityMetrics:
    """Summarise per-reference scores (``scored[i]`` belongs to ``references[i]``)."""
    n = len(scored)
    pairs = list(zip(references, scored, strict=True))
    invalid = [(r, s) for r, s in pairs if s.invalid_action]

    def recall(which: str) -> tuple[int, float | None]:
        chosen: list[bool] = []
        for r, s in pairs:
            t = r.transition
            positive = {
                "reward": target_reward(t, reward_mode) > 0,
                "done": t.terminated,
                "success": t.success,
            }[which]
            if positive:
                chosen.append({"reward": s.reward_ok, "done": s.done_ok, "success": s.success_ok}[which])
        return len(chosen), _mean(chosen)

    reward_n, reward_recall = recall("reward")
    done_n, done_recall = recall("done")
    success_n, success_recall = recall("success")
    return FidelityMetrics(
        n=n,
        answered=sum(s.answered for s in scored),
        reward_accuracy=_mean([s.reward_ok for s in scored]) or 0.0,
        done_accuracy=_mean([s.done_ok for s in scored]) or 0.0,
        success_accuracy=_mean([s.success_ok for s in scored]) or 0.0,
        next_state_exact=_mean([s.exact for s in scored]) or 0.0,
        next_state_f1=_mean([s.f1 for s in scored]) or 0.0,
        positives=PositiveRecall(
            reward=reward_n,
            reward_recall=reward_recall,
            done=done_n,
            done_recall=done_recall,
            success=success_n,
            success_recall=success_recall,
        ),
        invalid_actions=InvalidActionMetrics(
            count=len(invalid),
            reward_zero=_mean([s.predicted is not None and s.predicted.reward == 0 for _, s in invalid]),
            state_kept=_mean([bool(s.kept_state) for _, s in invalid]),
            not_done=_mean([s.predicted is not None and not s.predicted.done for _, s in invalid]),
            reference_state_kept=_mean(
                [
                    state_kept(r.transition.state, r.transition.next_state, volatile=volatile)
                    for r, _ in invalid
                ]
            ),
        ),
    )


def score_predictions(
    references: Sequence[Reference],
    predictions: Sequence[ExperienceOutput | None],
    *,
    reward_mode: RewardMode = "dense",
    volatile: Sequence[str] = DEFAULT_VOLATILE,
) -> tuple[FidelityMetrics, list[ScoredPrediction]]:
    """Compare ``predictions[i]`` with ``references[i]`` and summarise (see the module docstring).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    scored = [
        score_one(r, p, reward_mode=reward_mode, volatile=volatile)
        for r, p in zip(references, predictions, strict=True)
    ]
    return aggregate(references, scored, reward_mode=reward_mode, volatile=volatile), scored
