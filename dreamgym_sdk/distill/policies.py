"""A collection policy that also tries actions the environment does not admit.

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
from typing import Any

from dreamgym_sdk.collect import ExpertPolicy, admissible_actions
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.types import Task, Transition

__all__ = ["InvalidActionPolicy", "invalid_actions"]

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
