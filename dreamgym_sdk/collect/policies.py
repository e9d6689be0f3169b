"""Policies for collecting offline data: the environment's expert, ε-random admissible actions, mixtures.

Randomness is drawn per decision from ``(seed, task id, info["seed"], step)`` rather than from a shared
generator, so a collection run is reproducible whatever order concurrent episodes happen to act in.
``info["seed"]`` is the episode's reset seed: :class:`~dreamgym_sdk.integrations.textworld.TextWorldEnv`
reports it, and :func:`~dreamgym_sdk.collect.collect` adds it for any other environment.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, cast

from dreamgym_sdk.policies.base import Policy, admissible_actions
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "ExpertPolicy",
    "Granularity",
    "MixturePolicy",
    "RandomAdmissiblePolicy",
    "admissible_actions",
    "expert_action",
]


def _rng(*parts: object) -> random.Random:
    # A string seed is hashed with SHA-512: stable across processes, unlike hash().
    return random.Random(":".join(map(str, parts)))


class ExpertPolicy:
    """Plays the environment's own solution.

    It takes the first of ``info["policy_commands"]`` (TextWorld replans it from the current state, so
    the expert recovers after other policies' detours), else the next step of ``info["walkthrough"]``
    while the episode has followed it exactly, else ``fallback``.

    Args:
        fallback: the action when no expert action is known; ``None`` raises ``ValueError`` instead.
    """

    def __init__(self, *, fallback: str | None = "look") -> None:
        self.fallback = fallback

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """The expert's next action."""
        action = expert_action(info, history)
        if action is not None:
            return action
        if self.fallback is None:
            raise ValueError(
                "no expert action: info has no policy_commands and the walkthrough does not apply"
            )
        return self.fallback


def expert_action(info: Mapping[str, Any], history: Sequence[Transition]) -> str | None:
    """The expert's next action from ``info`` (see :class:`ExpertPolicy`), or ``None``."""
    plan: object = info.get("policy_commands")
    if isinstance(plan, Sequence) and plan and not isinstance(plan, str):
        return str(cast(Sequence[object], plan)[0])
    walkthrough: object = info.get("walkthrough")
    if isinstance(walkthrough, Sequence) and not isinstance(walkthrough, str):
        steps = [str(s) for s in cast(Sequence[object], walkthrough)]
        done = [t.action for t in history]
        if len(done) < len(steps) and steps[: len(done)] == done:
            return steps[len(done)]
    return None


class RandomAdmissiblePolicy:
    """With probability ``epsilon`` a uniformly random admissible action, otherwise ``base``'s action.

    ``RandomAdmissiblePolicy()`` (``epsilon=1``) acts at random; ``RandomAdmissiblePolicy(0.2)`` is an
    expert that takes a random detour one step in five.

    Args:
        epsilon: probability of a random action, in ``[0, 1]``.
        seed: makes the random choices reproducible (see the module docstring).
        base: the policy followed otherwise; defaults to :class:`ExpertPolicy`.
    """

    def __init__(self, epsilon: float = 1.0, *, seed: int = 0, base: Policy | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")
        self.epsilon = epsilon
        self.seed = seed
        self.base: Policy = base if base is not None else ExpertPolicy()

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """A random admissible action, or the base policy's."""
        rng = _rng(self.seed, "random", task.id, info.get("seed"), len(history))
        actions = admissible_actions(info)
        if actions and (self.epsilon >= 1.0 or rng.random() < self.epsilon):
            return rng.choice(actions)
        if self.epsilon >= 1.0 and not actions:
            raise ValueError(
                "RandomAdmissiblePolicy needs info['admissible_commands'] (or 'admissible_actions')"
            )
        return await self.base.act(task, observation, history, info)


class Granularity(StrEnum):
    """How often :class:`MixturePolicy` draws which policy acts."""

    EPISODE = "episode"
    """Once per episode: each episode is played by one policy."""
    STEP = "step"
    """At every step: episodes interleave the policies."""


class MixturePolicy:
    """Picks one of several policies at random, by weight, per episode or per step.

    ```python
    policy = MixturePolicy([(ExpertPolicy(), 0.6), (RandomAdmissiblePolicy(0.3), 0.3),
                            (RandomAdmissiblePolicy(), 0.1)], seed=0)
    ```

    Args:
        policies: ``(policy, weight)`` pairs; weights are positive and need not sum to 1.
        seed: makes the draws reproducible (see the module docstring).
        per: draw per ``"episode"`` (default) or per ``"step"``.
    """

    def __init__(
        self,
        policies: Sequence[tuple[Policy, float]],
        *,
        seed: int = 0,
        per: Granularity | str = Granularity.EPISODE,
    ) -> None:
        if not policies:
            raise ValueError("MixturePolicy needs at least one (policy, weight) pair")
        if any(weight <= 0 for _, weight in policies):
            raise ValueError("mixture weights must be positive")
        self.policies = [policy for policy, _ in policies]
        self.weights = [float(weight) for _, weight in policies]
        self.seed = seed
        self.per = Granularity(per)

    def choose(self, task: Task, history: Sequence[Transition], info: Mapping[str, Any]) -> Policy:
        """The policy that acts at this point of the episode."""
        step = len(history) if self.per is Granularity.STEP else None
        rng = _rng(self.seed, "mixture", task.id, info.get("seed"), step)
        return rng.choices(self.policies, weights=self.weights)[0]

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """The chosen policy's action."""
        return await self.choose(task, history, info).act(task, observation, history, info)
