"""``dreamgym serve`` serves DreamGym, not a bare prompted LLM: the experience model retrieves real
transitions from a LanceDB buffer on disk, built by the same code as ``dreamgym train``'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import TOKEN_A

from dreamgym_sdk import Task
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.grounding import ReplaySection
from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig
from dreamgym_sdk.serve import Client, EnvServer, ServeConfig, load_config, open_experience_model
from dreamgym_sdk.testing.openai_server import OpenAIServer
from dreamgym_sdk.types import Source, Transition

pytest.importorskip("lancedb")

STEPS = [("open door", "outside", True), ("look", "a locked room", False), ("knock", "nobody answers", False)]


def _real(i: int, action: str, after: str, won: bool) -> Transition:
    return Transition(
        id=f"real-{i}", task_id="door", episode_id=f"e{i}", step=0, environment="dream",
        state="a locked room", action=action, next_state=after, reward=float(won), terminated=won,
        success=won, source=Source.REAL,
    )  # fmt: skip


REAL = [_real(i, *step) for i, step in enumerate(STEPS)]
DOOR = Task(id="door", instruction="leave", environment="dream", initial_state="a locked room")


def door(body: dict[str, Any]) -> str:
    prompt = body["messages"][1]["content"]
    action = prompt.split("## Action\n")[1].split("\n")[0]
    won = action == "open door"
    answer = {"reasoning": "as the example shows", "next_state": "outside" if won else "a locked room",
              "reward": int(won), "done": won, "success": won}  # fmt: skip
    return json.dumps(answer)


async def test_a_served_step_is_grounded_on_real_transitions(tmp_path: Path) -> None:
    uri = str(tmp_path / "buffer")
    async with LanceDBReplayBuffer(ReplayConfig(uri=uri, embedder="hashing")) as buffer:
        await buffer.add(REAL)
    async with OpenAIServer(responder=door) as llm:
        config = ServeConfig(
            port=0, tokens=(TOKEN_A,), model="openai/tiny", api_base=llm.base_url, api_key="sk-test",
            replay=ReplaySection(uri=uri), reasoning={"k": 2},  # pyright: ignore[reportArgumentType]
        )  # fmt: skip
        async with (
            open_experience_model(config) as model,
            EnvServer.for_model(model, config) as server,
            Client(server.url, token=TOKEN_A) as env,
        ):
            door_task = Task(
                id="door", instruction="leave", environment="dream", initial_state="a locked room"
            )
            await env.reset(task=door_task)
            step = await env.step("open door")
    retrieved = step.info["provenance"].retrieved_ids
    assert len(retrieved) == 2 and set(retrieved) <= {t.id for t in REAL}
    assert retrieved[0] == "real-0"  # the buffer's transition of that very state and action ranks first
    prompt = llm.requests[0].body["messages"][1]["content"]  # pyright: ignore[reportOptionalSubscript]
    assert "## Similar transitions" in prompt and "outside" in prompt
    assert (step.observation, step.reward, step.terminated) == ("outside", 1.0, True)


async def test_the_buffer_is_checked_before_serving(tmp_path: Path) -> None:
    config = load_config(
        None, model="openai/tiny", api_key="sk-test", **{"replay.uri": str(tmp_path / "none")}
    )
    assert config.replay.uri == str(tmp_path / "none")
    with pytest.raises(ConfigError, match=r"replay\.uri"):
        async with open_experience_model(config):
            pass
