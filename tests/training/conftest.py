"""Fixtures for the RL backend tests: a tiny chat model built once per session, fresh policies on it, and
a way to roll out groups of episodes in a DreamEnv that rewards one target action.

Uses :func:`dreamgym_sdk.testing.tiny_models.build_tiny_model` (needs torch and transformers; the test
modules that use these fixtures skip themselves when the ``train`` extra is missing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from dreamgym_sdk import DreamEnv, Episode, Task
from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.rollout import RolloutRunner
from dreamgym_sdk.testing import FunctionExperienceModel

ACTIONS = ("open door", "take key", "go north", "eat apple")
TARGET = "open door"


def world(request: ExperienceRequest) -> dict[str, object]:
    """Reward 1 when the action is the target word; episodes last at most two steps."""
    won = request.action == TARGET
    return {
        "reasoning": "the door opens" if won else "nothing happens",
        "next_state": "you are outside" if won else "a room with a closed door",
        "reward": float(won),
        "done": won or request.step >= 1,
        "success": won,
    }


EXPERIENCE = FunctionExperienceModel(world, initial_state="a room with a closed door")

PolicyFactory = Callable[..., Any]
Rollout = Callable[..., Awaitable[list[Episode]]]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    corpus = [*ACTIONS, "a room with a closed door", "you are outside", "Task: get out"]
    return build_tiny_model(tmp_path_factory.mktemp("rl") / "tiny", corpus * 5, hidden=32, layers=1, heads=2)


@pytest.fixture
def make_policy(tiny_model_path: Path) -> PolicyFactory:
    """``make_policy(**HFPolicyConfig fields)``: a fresh policy on the tiny model (constrained to ACTIONS)."""
    from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig

    def make(**options: Any) -> HFPolicy:
        settings: dict[str, Any] = {
            "temperature": 1.0,
            "max_new_tokens": 8,
            "constrain_to_admissible": True,
            "actions": ACTIONS,
        }
        return HFPolicy.from_pretrained(tiny_model_path, HFPolicyConfig(**(settings | options)))

    return make


@pytest.fixture
def rollout() -> Rollout:
    """``await rollout(policy, tasks, group_size, observe=backend.observe, bus=None, seed=0)``."""

    async def run(
        policy: Any,
        tasks: Sequence[Task],
        group_size: int,
        *,
        observe: Callable[[Episode], Awaitable[None]] | None = None,
        bus: EventBus | None = None,
        seed: int = 0,
    ) -> list[Episode]:
        runner = RolloutRunner(lambda group: DreamEnv(EXPERIENCE, max_steps=2), policy, bus=bus)
        episodes = await runner.run(tasks, group_size=group_size, seed=seed)
        if observe is not None:
            for episode in episodes:
                await observe(episode)
        return episodes

    return run


def tasks(count: int) -> list[Task]:
    return [Task(instruction="get out", id=f"task-{i}") for i in range(count)]


@pytest.fixture
def make_tasks() -> Callable[[int], list[Task]]:
    return tasks
