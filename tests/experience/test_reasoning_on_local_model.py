"""DreamEnv episodes end to end on the local transformers backend.

A tiny model, built from a config with a tokenizer trained here, is taught the world's answers to the
exact prompts an episode sends; then ``ReasoningExperienceModel`` on ``hf:<dir>`` runs the episode: prompt
rendering, the chat template, generation (batched when episodes run concurrently), parsing and
validation, transitions and provenance. Nothing in the chain is a double.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from dreamgym_sdk import DreamEnv, ReasoningExperienceModel, Task
from dreamgym_sdk.distill.tiny import frequent_lines
from dreamgym_sdk.providers import ChatRequest, get_provider
from dreamgym_sdk.providers.hf import HFProvider
from dreamgym_sdk.testing import FunctionProvider, build_tiny_model, teach_tiny_model
from dreamgym_sdk.types import Provenance

pytest.importorskip("transformers")

ROOM = "A small room. The door to the north is closed."
OUTSIDE = "Outside, in the sunshine."
TASK = Task(id="leave-room", instruction="leave the room", environment="room", initial_state=ROOM)
WORLD = {
    "look": {"reasoning": "Looking changes nothing.", "next_state": ROOM, "reward": 0, "done": False,
             "success": False},
    "open door": {"reasoning": "The door opens; the agent walks out.", "next_state": OUTSIDE, "reward": 1,
                  "done": True, "success": True},
}  # fmt: skip
ACTIONS = ["look", "open door"]


def answer_for(request: ChatRequest) -> str:
    """The world's answer to an experience-model prompt (the line after its ``## Action`` header)."""
    action = request.messages[-1].content.split("## Action\n", 1)[1].splitlines()[0]
    return json.dumps(WORLD[action])


async def episode_prompts() -> list[ChatRequest]:
    """The requests one episode sends, recorded through a double that answers like the world."""
    recorder = FunctionProvider(answer_for)
    async with DreamEnv(ReasoningExperienceModel(recorder), max_steps=5) as env:
        await env.reset(task=TASK)
        for action in ACTIONS:
            await env.step(action)
    return recorder.requests


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    requests = anyio.run(episode_prompts)
    examples = [(r.messages, answer_for(r)) for r in requests]
    prompts = ["\n".join(m.content for m in r.messages) for r in requests]
    path = build_tiny_model(
        tmp_path_factory.mktemp("world") / "model",
        [*prompts, *(a for _, a in examples)],
        phrases=frequent_lines(prompts, min_share=1.0, min_chars=12),  # the fixed text: a token a line
    )
    teach_tiny_model(path, examples)
    return path


async def test_an_episode_runs_end_to_end_on_the_local_model(local_model: Path) -> None:
    async with (
        get_provider(f"hf:{local_model}") as provider,
        DreamEnv(ReasoningExperienceModel(provider), max_steps=5) as env,
    ):
        obs, _ = await env.reset(task=TASK)
        assert obs == ROOM
        looked = await env.step("look")
        assert (looked.observation, looked.reward, looked.terminated, looked.truncated) == (
            ROOM,
            0,
            False,
            False,
        )
        assert looked.info["reasoning"] == "Looking changes nothing."
        opened = await env.step("open door")
        assert (opened.observation, opened.reward, opened.terminated) == (OUTSIDE, 1.0, True)
        assert opened.info["success"] is True
        provenance = opened.info["provenance"]
        assert isinstance(provenance, Provenance)
        assert provenance.model == f"hf:{local_model}"
        assert provenance.prompt_tokens > 0 and provenance.completion_tokens > 0
        assert opened.info["attempts"] == 1  # parsed at the first answer, nothing repaired
        assert opened.info["repairs"] == []
        assert isinstance(provider, HFProvider) and provider.stats.requests == 2


async def test_concurrent_episodes_share_batches(local_model: Path) -> None:
    async with get_provider(f"hf:{local_model}", backend_options={"max_batch_size": 8}) as provider:
        model = ReasoningExperienceModel(provider)
        outcomes: list[tuple[float, bool]] = []

        async def episode() -> None:
            async with DreamEnv(model, max_steps=5) as env:
                await env.reset(task=TASK)
                await env.step("look")
                result = await env.step("open door")
                outcomes.append((result.reward, result.terminated))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(episode)
        assert isinstance(provider, HFProvider)
        assert outcomes == [(1.0, True)] * 6
        assert provider.stats.requests == 12
        assert provider.stats.max_batch_size > 1
