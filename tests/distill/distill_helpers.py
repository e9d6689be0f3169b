"""Helpers of the distillation tests: the scripted episode, skip markers and the shared data type."""

# Static checkers cannot follow the package-dir mapping integrations/ -> dreamgym_sdk.integrations.
# pyright: reportMissingImports=false

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from dreamgym_sdk._imports import is_available
from dreamgym_sdk.collect import MemorySink, collect
from dreamgym_sdk.distill import GroundTruthReport
from dreamgym_sdk.integrations.textworld import PolicyMix, collection_policy, replay_ground_truth
from dreamgym_sdk.testing import ScriptedPolicy
from dreamgym_sdk.types import Transition

SCRIPT = (
    "close fridge",
    "open fridge",
    "eat lamp",
    "take orange bell pepper from fridge",
    "prepare meal",
    "eat meal",
)
"""Played in game 0 (seed 0), whose fridge starts open and holds the orange bell pepper of the recipe."""

needs_textworld = pytest.mark.skipif(
    not is_available("textworld"), reason="needs the textworld extra: pip install 'dreamgym-sdk[textworld]'"
)
needs_training = pytest.mark.skipif(
    not all(is_available(m) for m in ("torch", "transformers", "trl", "datasets")),
    reason="needs the train extra: pip install 'dreamgym-sdk[train]'",
)


@dataclass(frozen=True)
class TWData:
    """Games, the scripted episode, other episodes and the ground truth of all of them."""

    games: list[Any]
    scripted: list[Transition]
    others: list[Transition]
    truth: GroundTruthReport

    @property
    def transitions(self) -> list[Transition]:
        return [*self.scripted, *self.others]


async def play_episodes(games: list[Any]) -> TWData:
    import dreamgym_sdk.integrations.textworld as tw

    scripted_sink, others_sink = MemorySink(), MemorySink()
    await collect(
        lambda _: tw.TextWorldEnv(max_steps=20),
        ScriptedPolicy(SCRIPT),
        [games[0].to_task()],
        scripted_sink,
        seed=0,
    )
    policy = collection_policy(PolicyMix(expert=0.5, noisy=0.5, random=0.0, invalid_rate=0.2), seed=1)
    await collect(
        lambda _: tw.TextWorldEnv(max_steps=12), policy, [g.to_task() for g in games], others_sink,
        episodes_per_task=2, seed=10,
    )  # fmt: skip
    scripted = sorted(scripted_sink.transitions, key=lambda t: t.step)
    others = list(others_sink.transitions)
    truth = await replay_ground_truth([*scripted, *others], games)
    return TWData(list(games), scripted, others, truth)
