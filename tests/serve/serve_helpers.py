"""Shared pieces of the serve tests: tokens, a deterministic world model, a running server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceRequest
from dreamgym_sdk.serve import EnvServer, ServeConfig
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.types import Task

TOKEN_A = "tok-alpha-7f3c9a1e5b2d8c4f"
TOKEN_B = "tok-bravo-0e6d1a9c3b7f2e5a"
AUTH_A = {"Authorization": f"Bearer {TOKEN_A}"}
AUTH_B = {"Authorization": f"Bearer {TOKEN_B}"}


def world(request: ExperienceRequest) -> dict[str, Any]:
    """A deterministic world: the next state names the task, the step and the action, so a session that
    saw anything of another session's episode is caught; the episode lasts ``task.metadata["length"]``."""
    length = request.task.metadata.get("length", 3)
    length = length if isinstance(length, int) else 3
    done = request.step + 1 >= length
    return {
        "reasoning": f"step {request.step}",
        "next_state": f"{request.task.instruction}|{request.step}|{request.action}",
        "reward": 1.0 if done else 0.0,
        "done": done,
        "success": done,
    }


def world_model() -> FunctionExperienceModel:
    return FunctionExperienceModel(
        world, initial_state=lambda task: f"start:{task.instruction}", name="world"
    )


def task(name: str, length: int = 3) -> Task:
    return Task(instruction=name, environment="test", metadata={"length": length})


@asynccontextmanager
async def running(
    model: ExperienceModel | None = None, *, bus: EventBus | None = None, **config: Any
) -> AsyncIterator[EnvServer]:
    """A server on 127.0.0.1 with a free port, accepting TOKEN_A and TOKEN_B (overridable)."""
    settings = {"port": 0, "tokens": (TOKEN_A, TOKEN_B), "max_steps": 50, **config}
    async with EnvServer.for_model(model or world_model(), ServeConfig(**settings), bus=bus) as server:
        yield server
