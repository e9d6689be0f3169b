"""Play an OpenEnv environment as a real dreamgym Env: a running server, or an in-process environment.

Run: ``python examples/openenv_echo.py --url http://127.0.0.1:8000`` against an OpenEnv server (for
example the echo environment from ``openenv init``, served with uvicorn). Without ``--url`` it plays an
in-process environment shaped like that template's (OpenEnv's ``Environment`` interface), so it runs
with nothing else installed.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio
from pydantic import BaseModel, Field

from dreamgym_sdk import Env, RolloutRunner, Task
from dreamgym_sdk.integrations.openenv import OpenEnvEnv, OpenEnvWebSocketEnv
from dreamgym_sdk.testing import ScriptedPolicy


class EchoAction(BaseModel):
    message: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class EchoObservation(BaseModel):
    echoed_message: str = ""
    message_length: int = 0
    done: bool = False
    reward: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EchoEnvironment:
    """The echo environment of OpenEnv's template (``reset``/``step``/``state``), ending on "bye"."""

    def __init__(self) -> None:
        self.steps = 0

    def reset(self, seed: int | None = None, **kwargs: Any) -> EchoObservation:
        self.steps = 0
        return EchoObservation(echoed_message="Echo environment ready!", reward=0.0)

    def step(self, action: EchoAction) -> EchoObservation:
        self.steps += 1
        text = action.message
        return EchoObservation(
            echoed_message=text,
            message_length=len(text),
            done=text == "bye",
            reward=min(len(text) * 0.1, 1.0),
        )

    async def step_async(self, action: EchoAction) -> EchoObservation:
        return self.step(action)

    @property
    def state(self) -> dict[str, int]:
        return {"step_count": self.steps}


async def main(url: str | None) -> None:
    def make_env(group: int) -> Env:
        if url:
            # The text goes into the action's one text field; the template's echo never ends an episode.
            return OpenEnvWebSocketEnv(url, max_steps=3)
        return OpenEnvEnv(
            EchoEnvironment(), action_from_text=lambda text: EchoAction(message=text), max_steps=10
        )

    # OpenEnv's generated server takes one session at a time (max_concurrent_envs=1): play in turn.
    runner = RolloutRunner(
        make_env, ScriptedPolicy(["hello", "dreamgym", "bye"]), max_concurrency=1 if url else 8
    )
    episodes = await runner.run([Task(instruction="say bye", environment="openenv")], group_size=2, seed=0)
    for t in episodes[0].transitions:
        print(f"{t.action!r:12} -> {t.next_state!r} reward={t.reward:.1f} done={t.done}")
    print("episodes:", [(e.source.value, len(e), round(e.total_reward, 1)) for e in episodes])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="an OpenEnv server's base URL (default: an in-process environment)")
    anyio.run(main, parser.parse_args().url)
