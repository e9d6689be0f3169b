"""The served experience model built from the configuration: an LLM behind an OpenAI-compatible server."""

from __future__ import annotations

import json
from typing import Any

import anyio
from serve_helpers import TOKEN_A

from dreamgym_sdk import Task
from dreamgym_sdk.serve import Client, EnvServer, ServeConfig, open_experience_model
from dreamgym_sdk.testing.openai_server import OpenAIServer


def door(body: dict[str, Any]) -> str:
    prompt = body["messages"][1]["content"]
    action = prompt.split("## Action\n")[1].split("\n")[0]
    won = action == "open door"
    answer = {
        "reasoning": f"{action} in a locked room",
        "next_state": "outside" if won else "a locked room",
        "reward": int(won),
        "done": won,
        "success": won,
    }
    return json.dumps(answer)


async def test_serves_a_reasoning_model_from_the_config() -> None:
    api_key = "sk-served-model-key-0123456789"
    async with OpenAIServer(responder=door) as llm:
        config = ServeConfig(
            port=0,
            tokens=(TOKEN_A,),
            model="openai/tiny",
            api_base=llm.base_url,
            api_key=api_key,
            max_steps=5,
        )
        async with (
            open_experience_model(config) as model,
            EnvServer.for_model(model, config) as server,
            Client(server.url, token=TOKEN_A) as env,
        ):
            await env.reset(task=Task(instruction="leave", initial_state="a locked room"))
            first = await env.step("look")
            last = await env.step("open door")
    assert (first.observation, first.reward, first.terminated) == ("a locked room", 0.0, False)
    assert (last.observation, last.reward, last.terminated) == ("outside", 1.0, True)
    assert last.info["provenance"].model == "openai/tiny"
    assert last.info["reasoning"] == "open door in a locked room"
    headers = {k.lower(): v for k, v in llm.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {api_key}"  # the key reached the provider


async def test_model_calls_are_not_throttled_below_the_sessions() -> None:
    # every session's step reaches the model at once: the provider's calls in flight follow max_sessions
    # (a fixed 64 made 2,048 sessions over a 1 s model wait in line for 32 s)
    sessions, in_flight, most = 80, [0], [0]
    everyone = anyio.Event()

    async def barrier(body: dict[str, Any]) -> str:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        if in_flight[0] == sessions:
            everyone.set()
        with anyio.move_on_after(10):  # bounded: a throttled provider never gets them all here
            await everyone.wait()
        in_flight[0] -= 1
        return door(body)

    async with OpenAIServer(responder=barrier) as llm:
        config = ServeConfig(
            port=0,
            tokens=(TOKEN_A,),
            model="openai/tiny",
            api_base=llm.base_url,
            api_key="sk-x",
            max_sessions=100,
        )
        assert config.provider.max_concurrency == 100
        async with open_experience_model(config) as model, EnvServer.for_model(model, config) as server:

            async def play() -> None:
                async with Client(server.url, token=TOKEN_A) as env:
                    await env.reset(task=Task(instruction="leave", initial_state="a locked room"))
                    await env.step("open door")

            async with anyio.create_task_group() as tg:
                for _ in range(sessions):
                    tg.start_soon(play)
    assert most[0] == sessions
