"""The served experience model built from the configuration: an LLM behind an OpenAI-compatible server."""

from __future__ import annotations

import json
from typing import Any

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
