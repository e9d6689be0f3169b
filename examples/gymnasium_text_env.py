"""A DreamEnv as a registered gymnasium environment, and a gymnasium text env back as a dreamgym Env.

Run: ``python examples/gymnasium_text_env.py`` (needs ``pip install 'dreamgym-sdk[gymnasium]'``)
"""

from __future__ import annotations

from typing import Any

import anyio
import gymnasium
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from dreamgym_sdk import DreamEnv, ExperienceRequest, RolloutRunner, Task
from dreamgym_sdk.integrations.gymnasium import GymnasiumToEnv
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedPolicy


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model standing in for an LLM."""
    if req.action == "open fridge":
        return {"reasoning": "it opens", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    state = "apple in fridge" if won else req.state
    return {"reasoning": "", "next_state": state, "reward": float(won), "done": won, "success": won}


def make_dream_env() -> DreamEnv:
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state="fridge: closed"), max_steps=10)


def main() -> None:
    gymnasium.register(
        "dreamgym/Kitchen-v0",
        entry_point="dreamgym_sdk.integrations.gymnasium:EnvToGymnasium",
        kwargs={"env": make_dream_env, "task": "put the apple in the fridge"},
    )
    env = gymnasium.make("dreamgym/Kitchen-v0", render_mode="ansi")
    gymnasium_check_env(env.unwrapped)  # gymnasium's own checker
    obs, info = env.reset(seed=0)
    print("reset:", obs)
    for action in ("look", "open fridge", "put apple in fridge"):
        obs, reward, terminated, _truncated, info = env.step(action)
        print(
            f"{action!r:24} -> {obs!r:20} reward={reward} terminated={terminated} success={info['success']}"
        )
    env.close()

    # ...and any gymnasium text env (here the same one) back behind the async Env protocol:
    async def rollouts() -> None:
        runner = RolloutRunner(
            lambda group: GymnasiumToEnv("dreamgym/Kitchen-v0", environment="kitchen"),
            ScriptedPolicy(["open fridge", "put apple in fridge"]),
        )
        episodes = await runner.run([Task(instruction="put the apple in the fridge")], group_size=3, seed=0)
        print("rollouts:", [(e.source.value, len(e), e.total_reward) for e in episodes])

    anyio.run(rollouts)


if __name__ == "__main__":
    main()
