"""Quickstart: a synthetic environment, a policy, a bus and a trainer, all offline in a second.

Run: ``python examples/quickstart.py``
"""

from __future__ import annotations

from typing import Any

import anyio

from dreamgym_sdk import (
    DreamEnv,
    EventBus,
    ExperienceRequest,
    RolloutRunner,
    Task,
    attach_trainer,
)
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy, RecordingTrainer


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model: the fridge opens, then the apple goes in."""
    if req.action == "open fridge":
        return {
            "reasoning": "The fridge is closed; opening it works.",
            "next_state": "fridge: open; apple: in hand",
            "reward": 0.0,
            "done": False,
        }
    if req.action == "put apple in fridge" and "fridge: open" in req.state:
        return {
            "reasoning": "The fridge is open, so the apple fits.",
            "next_state": "fridge: open, apple inside",
            "reward": 1.0,
            "done": True,
            "success": True,
        }
    return {
        "reasoning": f"{req.action!r} changes nothing here.",
        "next_state": req.state,
        "reward": 0.0,
        "done": False,
    }


async def main() -> None:
    model = FunctionExperienceModel(kitchen, initial_state="fridge: closed; apple: in hand")

    # 1. One episode, step by step.
    async with DreamEnv(model, max_steps=5) as env:
        obs, info = await env.reset(task="put the apple in the fridge")
        for action in ("open fridge", "put apple in fridge"):
            obs, reward, terminated, truncated, info = await env.step(action)
            print(f"{action!r:24} -> {obs!r} reward={reward} done={terminated or truncated}")
            print(f"{'':27} because: {info['reasoning']}")

    # 2. Many episodes at once, in GRPO groups, with a trainer listening on the bus.
    policy = FunctionPolicy(
        lambda task, obs, history, info: ["open fridge", "put apple in fridge"][len(history) % 2]
    )
    trainer = RecordingTrainer()
    async with EventBus() as bus:
        attach_trainer(bus, trainer)
        runner = RolloutRunner(lambda g: DreamEnv(model, bus=bus, max_steps=5, group=g), policy, bus=bus)
        tasks = [Task(instruction="put the apple in the fridge"), Task(instruction="chill the apple")]
        episodes = await runner.run(tasks, group_size=8)
    print(f"{len(episodes)} episodes, success rate {sum(e.success for e in episodes) / len(episodes):.0%}")
    print(f"trainer update: {await trainer.update()}")


if __name__ == "__main__":
    anyio.run(main)
