"""A tiny world whose optimum is known, for tests that a policy *learns* (here, on a Ray worker, behind a
server).

Four actions; the episode lasts two steps and succeeds only for :data:`KEY_AND_DOOR_PLAN` in that order
(chance 1/16 for a uniform policy). :func:`key_and_door_policy` builds a tiny untrained policy for it, its
decoding constrained to the four actions, so learning shows as success rising from near 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dreamgym_sdk.env import DreamEnv
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.testing.doubles import FunctionExperienceModel
from dreamgym_sdk.types import Task

__all__ = [
    "KEY_AND_DOOR_ACTIONS",
    "KEY_AND_DOOR_PLAN",
    "build_key_and_door_model",
    "key_and_door_env",
    "key_and_door_policy",
    "key_and_door_tasks",
    "success_rose",
]

KEY_AND_DOOR_ACTIONS = ("take the key", "take the apple", "open the door", "open the window")
"""Multi-token actions sharing first tokens, so constrained decoding has forced tokens and real choices."""
KEY_AND_DOOR_PLAN = ("take the key", "open the door")
"""The only winning order."""
_START = "a locked room with a key and an apple"


def _step(request: ExperienceRequest) -> dict[str, object]:
    won = [*(t.action for t in request.history), request.action] == list(KEY_AND_DOOR_PLAN)
    return {
        "reasoning": "the key opens the door" if won else "nothing happens",
        "next_state": f"you did: {request.action}",
        "reward": float(won),
        "done": request.step >= 1,
        "success": won,
    }


KEY_AND_DOOR_WORLD = FunctionExperienceModel(_step, initial_state=_START)


def key_and_door_env(group: int = 0) -> DreamEnv:
    """A fresh two-step :class:`~dreamgym_sdk.DreamEnv` of the world (an env factory: takes the group)."""
    return DreamEnv(KEY_AND_DOOR_WORLD, max_steps=2)


def key_and_door_tasks(n: int) -> list[Task]:
    """``n`` tasks of the world (ids ``task-0`` ...), each one GRPO group."""
    return [Task(instruction="get out", id=f"task-{i}") for i in range(n)]


def build_key_and_door_model(out_dir: str | Path) -> Path:
    """Build and save the tiny untrained chat model the world's policy starts from (no network)."""
    from dreamgym_sdk.tiny_models import build_tiny_model

    corpus = [*KEY_AND_DOOR_ACTIONS, _START, *(f"you did: {a}" for a in KEY_AND_DOOR_ACTIONS)]
    return build_tiny_model(out_dir, corpus * 5, hidden=32, layers=1, heads=2)


def key_and_door_policy(model_dir: str | Path, seed: int | None = 0, **config: Any) -> Any:
    """An :class:`~dreamgym_sdk.policies.HFPolicy` over the world's actions (sampling at temperature 1,
    decoding constrained to them); ``config`` overrides :class:`~dreamgym_sdk.policies.HFPolicyConfig`."""
    import torch

    from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig

    if seed is not None:
        torch.manual_seed(seed)  # pyright: ignore[reportUnknownMemberType]
    settings: dict[str, Any] = {
        "temperature": 1.0,
        "max_new_tokens": 8,
        "constrain_to_admissible": True,
        "actions": KEY_AND_DOOR_ACTIONS,
        "seed": seed,
    }
    return HFPolicy.from_pretrained(model_dir, HFPolicyConfig(**(settings | config)))


def success_rose(curve: Sequence[float], *, by: float = 0.15) -> bool:
    """Whether on-policy success per update clearly rose: the mean of the last three updates at least
    ``by`` above the mean of the first three. Where rollouts are not seeded (Ray workers, a served agent),
    when learning takes off varies from run to run (late success from 0.30 to 0.84 measured after 15-16
    updates of 64 episodes), so a fixed final level is a flaky test; without learning, a mean over 192
    episodes stays near chance (1/16, standard error about 0.02)."""
    return sum(curve[-3:]) / 3 - sum(curve[:3]) / 3 >= by
