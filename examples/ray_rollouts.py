"""Rollouts on Ray workers, streamed onto this process's event bus.

Run: ``python examples/ray_rollouts.py`` (needs ``pip install 'dreamgym-sdk[ray]'``) to start Ray on this
machine; ``RAY_ADDRESS=ray://head:10001 python examples/ray_rollouts.py`` runs the same code on a
cluster (the nodes need dreamgym-sdk installed).
"""

from __future__ import annotations

import os
from typing import Any

import anyio

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, ExperienceRequest, Task
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedPolicy

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model standing in for an LLM (or a vLLM server behind a provider)."""
    if req.action == "open fridge":
        return {"reasoning": "it opens", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    state = "apple in fridge" if won else req.state
    return {"reasoning": "", "next_state": state, "reward": float(won), "done": won, "success": won}


def make_env(group: int) -> DreamEnv:
    """Runs in the workers: each builds its own env (here a DreamEnv over a local experience model)."""
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state="fridge: closed"), max_steps=5)


async def main() -> None:
    config = RayConfig(num_workers=2, episodes_per_worker=4, max_in_flight=8, num_cpus=2)
    tasks = [Task(instruction=f"put apple {i} in the fridge") for i in range(4)]
    seen = []
    async with EventBus() as bus:
        bus.subscribe(EpisodeCompleted, callback=lambda event: seen.append(event.episode.id))
        policy = ScriptedPolicy(["open fridge", "put apple in fridge"])
        async with RayRollouts(make_env, policy=policy, bus=bus, config=config) as rollouts:
            episodes = await rollouts.run(tasks, group_size=4, seed=0)
            await bus.join()
            print(rollouts.stats)
    print(
        f"{len(episodes)} episodes, {len(seen)} on the bus, success rate",
        sum(e.success for e in episodes) / len(episodes),
    )


if __name__ == "__main__":
    anyio.run(main)
