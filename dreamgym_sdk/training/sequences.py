"""From recorded samples to training data: multi-turn token sequences with their masks, group
advantages and GAE. Pure Python (no torch), so every rule here is unit-testable and reusable by
third-party trainers.

**One episode, one sequence.** With a transcript-style policy every prompt of an episode extends the
previous prompt plus the sampled completion, so the episode is one token sequence::

    prompt_0 | action_0 | env_1 | action_1 | env_2 | action_2
             └──────────────── completion ─────────────────┘
    env_mask:  1 1 1 1    0 0 0   1 1 1 1    0 0 0   1 1 1

``env_i`` are the tokens the policy did not sample (the end-of-turn token when a completion was cut,
the template's turn markers and the next observation): ``env_mask`` is 0 there, so they condition the
later actions but are never trained on. This is the format of TRL's ``rollout_func`` (``env_mask``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dreamgym_sdk.errors import DreamGymError
from dreamgym_sdk.types import Sample

__all__ = [
    "NotOneSequenceError",
    "TokenSequence",
    "build_episode_sequence",
    "gae",
    "group_advantages",
]


class NotOneSequenceError(DreamGymError, ValueError):
    """Raised when an episode's prompts do not extend each other, so it cannot be one token sequence
    (a ``window``-style policy, or a transcript that outgrew ``max_prompt_tokens``)."""


@dataclass(frozen=True, slots=True)
class TokenSequence:
    """A prompt and a (possibly multi-turn) completion, with what is trained on."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    """Sampling log-probability of each completion token (0.0 at environment tokens)."""
    env_mask: list[int]
    """1 at tokens the policy sampled (trained on), 0 at tokens the environment or template inserted."""
    steps: int
    """Actions in the sequence."""
    allowed: list[tuple[int, ...]] | None = None
    """Per completion token, the token ids constrained decoding could choose from (``()`` where it was
    free, and at environment tokens); ``None`` when no token was constrained. A trainer scores a
    constrained token under the distribution renormalised over these ids, as it was sampled (see
    :class:`~dreamgym_sdk.policies.HFPolicy`)."""

    @property
    def policy_tokens(self) -> int:
        """Tokens the policy sampled."""
        return sum(self.env_mask)

    @property
    def env_tokens(self) -> int:
        """Tokens inserted between the actions."""
        return len(self.env_mask) - sum(self.env_mask)


def build_episode_sequence(samples: Sequence[Sample]) -> TokenSequence:
    """Merge the samples of an episode's steps (in step order) into one sequence with its ``env_mask``.

    Raises:
        NotOneSequenceError: a step's prompt does not start with the previous prompt plus its completion.
        ValueError: ``samples`` is empty.
    """
    if not samples:
        raise ValueError("an episode needs at least one sample")
    first = samples[0]
    prompt = list(first.prompt_ids)
    completion = list(first.completion_ids)
    logprobs = list(first.logprobs)
    mask = [1] * len(first.completion_ids)
    allowed = _allowed_of(first)
    context = len(prompt) + len(completion)
    for step, sample in enumerate(samples[1:], start=1):
        ids = sample.prompt_ids
        if (
            len(ids) < context
            or list(ids[: len(prompt)]) != prompt
            or list(ids[len(prompt) : context]) != completion
        ):
            raise NotOneSequenceError(
                f"the prompt of step {step} does not extend step {step - 1}'s prompt and completion; "
                "use a transcript-style policy (HFPolicyConfig(prompt_style='transcript')) whose "
                "episodes fit max_prompt_tokens"
            )
        inserted = ids[context:]
        completion += [*inserted, *sample.completion_ids]
        logprobs += [0.0] * len(inserted) + list(sample.logprobs)
        mask += [0] * len(inserted) + [1] * len(sample.completion_ids)
        allowed += [()] * len(inserted) + _allowed_of(sample)
        context = len(prompt) + len(completion)
    constrained = any(allowed)
    return TokenSequence(prompt, completion, logprobs, mask, len(samples), allowed if constrained else None)


def _allowed_of(sample: Sample) -> list[tuple[int, ...]]:
    return list(sample.allowed) if sample.allowed else [()] * len(sample.completion_ids)


def group_advantages(rewards: Sequence[float], *, scale: bool = True, eps: float = 1e-4) -> list[float]:
    """GRPO advantages of one group: ``(r - mean) / (std + eps)`` (``r - mean`` without ``scale``).

    ``std`` is the unbiased standard deviation, as in TRL. A group whose rewards are all equal has no
    learning signal: every advantage is exactly 0.0.
    """
    n = len(rewards)
    if n == 0:
        return []
    if max(rewards) == min(rewards):
        return [0.0] * n
    mean = sum(rewards) / n
    centred = [r - mean for r in rewards]
    if not scale:
        return centred
    std = math.sqrt(sum(c * c for c in centred) / (n - 1)) if n > 1 else 0.0
    return [c / (std + eps) for c in centred]


def gae(
    rewards: Sequence[float],
    values: Sequence[float],
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    last_value: float = 0.0,
) -> tuple[list[float], list[float]]:
    """Generalised advantage estimation over one episode's steps; returns ``(advantages, returns)``.

    ``values[t]`` is the critic's estimate of the state step ``t`` acted in; ``last_value`` the estimate of
    the state after the last step (0 when the episode terminated).
    """
    if len(rewards) != len(values):
        raise ValueError("rewards and values must have the same length")
    advantages = [0.0] * len(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(values) else last_value
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
    returns = [a + v for a, v in zip(advantages, values, strict=True)]
    return advantages, returns
