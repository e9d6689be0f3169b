"""Serve a DreamEnv over HTTP + WebSocket and run episodes through the client, all in one process.

The server shares one experience model between its sessions; each client is an ``Env`` with its own
session, so the rollout runner uses the remote environment exactly like a local one.

Run: ``python examples/serve_client.py``
"""

from __future__ import annotations

import secrets
from typing import Any

import anyio

from dreamgym_sdk import EpisodeCompleted, EventBus, ExperienceRequest, RolloutRunner, Task
from dreamgym_sdk.serve import Client, EnvServer, ServeConfig
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy


def vault(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model: the vault opens with the task's code."""
    code = str(req.task.metadata["code"])
    opened = req.action == f"enter {code}"
    return {
        "reasoning": "The keypad accepts the right code." if opened else "Wrong code; the vault stays shut.",
        "next_state": "the vault is open" if opened else f"the keypad blinks after {req.action!r}",
        "reward": 1.0 if opened else 0.0,
        "done": opened,
        "success": opened,
    }


def guess(task: Task, observation: str, history: Any, info: Any) -> str:
    """A policy that tries codes in order (the right one is among the first three)."""
    return f"enter {len(history) + 1}"


async def main() -> None:
    token = secrets.token_urlsafe(24)
    config = ServeConfig(port=0, tokens=(token,), max_steps=5)
    model = FunctionExperienceModel(vault, initial_state="a closed vault with a keypad", name="vault")
    server_bus = EventBus()  # the server's own bus sees every episode of every client
    completed = server_bus.subscribe(EpisodeCompleted)

    async with EnvServer.for_model(model, config, bus=server_bus) as server:
        print(f"serving on {server.url}")
        runner = RolloutRunner(lambda _: Client(server.url, token=token), FunctionPolicy(guess))
        tasks = [Task(instruction=f"open vault {i}", metadata={"code": i}) for i in (1, 2, 3)]
        episodes = await runner.run(tasks, group_size=2, seed=0)
        for episode in episodes:
            actions = [t.action for t in episode.transitions]
            print(f"{episode.task.instruction}: success={episode.success} after {actions}")
        assert all(episode.success for episode in episodes)
        metrics = server.metrics.snapshot()
        print(f"server: {metrics['sessions']['created']} sessions, {metrics['steps']} steps")

    server_side = [completed.receive_nowait().episode for _ in episodes]
    assert {e.id for e in server_side} == {e.id for e in episodes}  # the same episodes, on both sides


if __name__ == "__main__":
    anyio.run(main)
