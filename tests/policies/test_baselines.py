"""Baseline policies: uniformly random admissible actions."""

from __future__ import annotations

import pytest

from dreamgym_sdk import Task
from dreamgym_sdk.policies.baselines import RandomPolicy

TASK = Task(instruction="anything")


async def test_random_policy_picks_admissible_actions_reproducibly() -> None:
    info = {"admissible_commands": ["north", "south", "east"]}
    a, b = RandomPolicy(seed=7), RandomPolicy(seed=7)
    runs = [[await p.act(TASK, "", [], info) for _ in range(30)] for p in (a, b)]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"north", "south", "east"}


async def test_random_policy_falls_back_to_its_actions_or_fails() -> None:
    policy = RandomPolicy(seed=0, actions=["wait"])
    assert await policy.act(TASK, "", [], {}) == "wait"
    assert await policy.act(TASK, "", [], {"admissible_actions": ["go"]}) == "go"
    with pytest.raises(ValueError, match="nothing to choose"):
        await RandomPolicy().act(TASK, "", [], {})
