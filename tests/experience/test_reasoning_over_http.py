"""A DreamEnv episode on ReasoningExperienceModel through a real OpenAI-compatible HTTP server (127.0.0.1)."""

from __future__ import annotations

import json
from typing import Any

from dreamgym_sdk import DreamEnv, Task
from dreamgym_sdk.experience import ReasoningExperienceModel, derive_seed
from dreamgym_sdk.providers import get_provider
from dreamgym_sdk.testing.openai_server import Fault, OpenAIServer


def world(body: dict[str, Any]) -> str:
    prompt = body["messages"][1]["content"]  # the step prompt, also on retries with feedback
    action = prompt.split("## Action\n")[1].split("\n")[0]
    won = action == "open door"
    answer = {
        "reasoning": f"{action} in a locked room",
        "next_state": "outside" if won else "a locked room",
        "reward": int(won),
        "done": won,
        "success": won,
    }
    return "```json\n" + json.dumps(answer) + "\n```"


async def test_episode_over_http_with_faults_in_between() -> None:
    async with OpenAIServer(responder=world) as server:
        provider = get_provider("openai/tiny", api_base=server.base_url, api_key="test")
        try:
            model = ReasoningExperienceModel(provider)
            async with DreamEnv(model) as env:
                await env.reset(task=Task(instruction="leave", initial_state="a locked room"), seed=3)
                first = await env.step("look")
                server.script(Fault.truncated(), Fault.empty())  # provider retry, then model retry
                last = await env.step("open door")
        finally:
            await provider.aclose()
    assert first.reward == 0.0 and not first.terminated
    assert last.reward == 1.0 and last.terminated and last.info["success"]
    assert last.info["attempts"] == 2 and len(server.requests) == 4
    provenance = first.info["provenance"]
    assert (
        provenance.model == "openai/tiny"
        and provenance.prompt_tokens > 0
        and provenance.completion_tokens > 0
    )
    body = server.requests[0].body
    assert body is not None and body["seed"] == derive_seed(3, "step", 0)  # the episode's first step
    assert body["response_format"]["json_schema"]["name"] == "experience_output"
