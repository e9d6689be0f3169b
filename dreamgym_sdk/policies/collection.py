"""Policies for collecting real data: the environment's expert, ε-random admissible actions, mixtures, and
actions the environment does not admit.

Randomness is drawn per decision from ``(seed, task id, info["seed"], step)`` rather than from a shared
generator, so a collection run is reproducible whatever order concurrent episodes happen to act in.
``info["seed"]`` is the episode's reset seed: :class:`~dreamgym_sdk.integrations.textworld.TextWorldEnv`
reports it, and :func:`~dreamgym_sdk.collect.collect` adds it for any other environment.

An experience model must learn what happens when an agent does something impossible (the state stays as it
was, the reward is 0), so its training data needs such steps; experts and random *admissible* policies
never take them. :class:`InvalidActionPolicy` wraps any policy and, now and then, plays a plausible but
non-admissible command made by recombining the verbs and objects of the admissible ones (``take fridge``,
``open red apple``) or a command about something that is not there. Given ``near_misses`` (the commands
a synthetic environment would offer in a state, e.g. TextWorld's grammar applied to the state text), it
prefers those the game refuses: they are the invalid actions a policy will actually try in the synthetic
environment (``prepare meal`` while an ingredient is missing), so the experience model must know them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, cast

from dreamgym_sdk.policies.base import Policy, admissible_actions
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "ExpertPolicy",
    "Granularity",
    "InvalidActionPolicy",
    "MixturePolicy",
    "RandomAdmissiblePolicy",
    "admissible_actions",
    "expert_action",
    "invalid_actions",
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


_VERBS = ("take", "open", "close", "eat", "drop", "examine", "cook", "slice", "go", "unlock", "put")
_ABSENT = ("golden key", "sword", "lamp", "blue potion", "piano", "ladder")
_DIRECTIONS = ("north", "south", "east", "west")
_STOP = frozenset({"from", "on", "in", "into", "with", "to", "the", "a", "an"})


def _objects(commands: Sequence[str]) -> list[str]:
    """The object phrases of ``commands``: the words after the verb, split at prepositions."""
    found: dict[str, None] = {}
    for command in commands:
        words = command.split()[1:]
        phrase: list[str] = []
        for word in [*words, "from"]:
            if word in _STOP:
                if phrase:
                    found[" ".join(phrase)] = None
                phrase = []
            else:
                phrase.append(word)
    return list(found)


def invalid_actions(admissible: Sequence[str]) -> list[str]:
    """Plausible commands that are not in ``admissible`` (sorted, without duplicates).

    Verbs of the admissible commands (and common ones) are combined with their objects, with directions
    and with objects that are absent; anything admissible, or a shorter form of an admissible command
    (which a parser might still accept), is removed.
    """
    allowed = {" ".join(a.split()) for a in admissible}
    verbs = dict.fromkeys([*(a.split()[0] for a in admissible if a.split()), *_VERBS])
    objects = [*_objects(admissible), *_ABSENT]
    candidates = {f"{verb} {obj}" for verb in verbs if verb != "go" for obj in objects}
    candidates |= {f"go {d}" for d in _DIRECTIONS}
    # "take apple" is not admissible when "take apple from table" is, but the game would still do it.
    return sorted(
        c for c in candidates if c not in allowed and not any(a.startswith(c + " ") for a in allowed)
    )


class InvalidActionPolicy:
    """With probability ``rate`` a non-admissible action, otherwise ``base``'s action.

    The choice is drawn per decision from ``(seed, task id, info["seed"], step)``, so runs are
    reproducible whatever order concurrent episodes act in (as the collection policies are).

    Args:
        rate: probability of an invalid action, in ``[0, 1]``.
        seed: makes the choices reproducible.
        base: the policy followed otherwise; defaults to :class:`~dreamgym_sdk.collect.ExpertPolicy`.
        near_misses: the commands a synthetic environment offers in an observed state; half of the
            invalid actions are drawn from those the environment does not admit, when there are any.
    """

    def __init__(
        self,
        rate: float = 0.1,
        *,
        seed: int = 0,
        base: Policy | None = None,
        near_misses: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        self.rate = rate
        self.seed = seed
        self.base: Policy = base if base is not None else ExpertPolicy()
        self.near_misses = near_misses

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """An invalid action (with probability ``rate``, when the admissible actions are known) or the
        base policy's action."""
        rng = random.Random(f"{self.seed}:invalid:{task.id}:{info.get('seed')}:{len(history)}")
        admissible = admissible_actions(info)
        if admissible and rng.random() < self.rate:
            candidates = invalid_actions(admissible)
            if self.near_misses is not None and rng.random() < 0.5:
                offered = set(admissible)
                near = sorted(c for c in self.near_misses(observation) if c not in offered)
                candidates = near or candidates
            if candidates:
                return rng.choice(candidates)
        return await self.base.act(task, observation, history, info)
