"""The buffer grounds the reasoning experience model: retrieved real transitions reach the prompt and the
provenance of synthetic steps, which admission then stores."""

from __future__ import annotations

import json

from conftest import LanceFactory
from replay_helpers import transition

from dreamgym_sdk import DreamEnv
from dreamgym_sdk.experience.reasoning import ReasoningExperienceModel
from dreamgym_sdk.providers.base import ChatRequest
from dreamgym_sdk.replay import AdmissionPolicy, admit_episodes
from dreamgym_sdk.testing import FunctionProvider
from dreamgym_sdk.types import Source, Task


async def test_synthetic_steps_are_grounded_on_real_neighbours(make_lance: LanceFactory) -> None:
    def answer(request: ChatRequest) -> str:
        return json.dumps({"reasoning": "the door opens", "next_state": "an open door", "reward": 1.0,
                           "done": True, "success": True})  # fmt: skip

    provider = FunctionProvider(answer)
    real = [transition(i, environment="house") for i in range(20)]
    synthetic = [transition(100 + i, environment="house", source=Source.SYNTHETIC) for i in range(20)]
    async with make_lance() as buffer:
        await buffer.add(real + synthetic)
        model = ReasoningExperienceModel(provider, retriever=buffer)
        task = Task(instruction="open door 7", environment="house", initial_state=real[7].state)
        async with DreamEnv(model) as env:
            await env.reset(task=task)
            result = await env.step(real[7].action)
        retrieved = result.info["retrieved_ids"]
        assert retrieved[0] == real[7].id  # its exact (state, action) neighbour comes first
        assert len(retrieved) == 4 and set(retrieved) <= {t.id for t in real}  # real only
        prompt = "\n".join(m.content for m in provider.requests[-1].messages)
        assert real[7].next_state in prompt
        episode = env.episode
        assert episode is not None
        report = await admit_episodes(buffer, [episode], AdmissionPolicy(max_synthetic_share=0.9))
        assert report.synthetic == 1
        [stored] = await buffer.get([episode.transitions[0].id])
        assert stored.provenance.retrieved_ids == tuple(retrieved)
