"""Baseline policies: uniformly random actions (scripted ones: :mod:`dreamgym_sdk.testing`)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from dreamgym_sdk.policies.base import admissible_actions
from dreamgym_sdk.types import Task, Transition

__all__ = ["RandomPolicy"]


class RandomPolicy:
    """Picks uniformly among the admissible actions: ``info["admissible_commands"]`` (or
    ``admissible_actions``) when the environment lists them, else the given ``actions``.

    The lower bound every trained policy should beat. Draws come from one seeded generator, so a run is
    reproducible when episodes act in the same order (for order-independent draws per decision, see
    :class:`~dreamgym_sdk.collect.RandomAdmissiblePolicy`).

    Args:
        seed: seed of the generator (``None``: fresh entropy).
        actions: the actions to choose from when ``info`` lists none.

    Raises:
        ValueError: from ``act``, when neither ``info`` nor ``actions`` offers an action.
    """

    def __init__(self, seed: int | None = 0, *, actions: Sequence[str] = ()) -> None:
        self.actions = list(actions)
        self._rng = random.Random(seed)

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """A uniformly random admissible action."""
        choices = admissible_actions(info) or self.actions
        if not choices:
            raise ValueError("RandomPolicy has nothing to choose from: info lists no admissible actions")
        return self._rng.choice(choices)
