"""The invalid-action collection policy."""

from __future__ import annotations

from typing import Any

from dreamgym_sdk.distill import InvalidActionPolicy, invalid_actions
from dreamgym_sdk.testing import ScriptedPolicy
from dreamgym_sdk.types import Task

ADMISSIBLE = ["open fridge", "take apple from table", "examine table", "go north", "inventory"]


def test_invalid_actions_are_never_admissible_nor_short_forms() -> None:
    actions = invalid_actions(ADMISSIBLE)
    assert actions == sorted(set(actions))
    assert not set(actions) & set(ADMISSIBLE)
    assert "take apple" not in actions  # a short form the game would still carry out
    assert "take fridge" in actions and "open apple" in actions and "go south" in actions
    assert "eat golden key" in actions  # something that is not there


async def test_rate_decides_and_the_choice_is_reproducible() -> None:
    task = Task(id="t", instruction="x")
    info: dict[str, Any] = {"admissible_commands": ADMISSIBLE, "seed": 3}
    always = InvalidActionPolicy(1.0, seed=1, base=ScriptedPolicy(["look"]))
    chosen = [await always.act(task, "obs", [], {**info, "seed": s}) for s in range(20)]
    assert all(a not in ADMISSIBLE and a in invalid_actions(ADMISSIBLE) for a in chosen)
    again = InvalidActionPolicy(1.0, seed=1, base=ScriptedPolicy(["look"]))
    assert [await again.act(task, "obs", [], {**info, "seed": s}) for s in range(20)] == chosen
    never = InvalidActionPolicy(0.0, base=ScriptedPolicy(["look"]))
    assert await never.act(task, "obs", [], info) == "look"
    # Without admissible actions it cannot know what is invalid: the base acts.
    blind = InvalidActionPolicy(1.0, base=ScriptedPolicy(["look"]))
    assert await blind.act(task, "obs", [], {}) == "look"
