"""An LLMPolicy behind an OpenAI-compatible server records what the server sampled (vLLM's token ids and
log-probabilities) on every action, and a trainer holding the same weights locally trains on them.

The server here is the project's OpenAI-format test server; in the training test it samples with a tiny
local model (as vLLM would on a GPU) and answers in vLLM's format: ``prompt_token_ids`` at the top,
``token_ids`` and ``logprobs.content`` in the choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dreamgym_sdk import DreamEnv, ProviderError, Task
from dreamgym_sdk.policies.llm import LLMPolicy, LLMPolicyConfig
from dreamgym_sdk.providers import get_provider
from dreamgym_sdk.rollout import RolloutRunner, run_episode
from dreamgym_sdk.testing import OpenAIServer
from dreamgym_sdk.testing.worlds import KEY_AND_DOOR_WORLD
from dreamgym_sdk.types import sample_of

TASK = Task(instruction="get out")


def vllm_answer(body: dict[str, Any], content: str, prompt: list[int], tokens: list[int],
                logprobs: list[float]) -> dict[str, Any]:  # fmt: skip
    """A chat completion as vLLM returns it with ``return_token_ids`` and ``logprobs``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body["model"],
        "prompt_token_ids": prompt,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "token_ids": tokens,
                "logprobs": {"content": [{"logprob": lp} for lp in logprobs]},
            }
        ],
        "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(tokens)},
    }


async def test_the_sample_is_what_the_server_returned() -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return vllm_answer(body, "open the door", [1, 2, 3], [7, 8, 2], [-0.5, -0.25, -0.01])

    async with OpenAIServer(responder=answer) as server:
        provider = get_provider("openai/tiny", api_base=server.base_url)
        policy = LLMPolicy(provider, LLMPolicyConfig(record_samples=True, temperature=1.0))
        policy.version = 4
        episode = await run_episode(DreamEnv(KEY_AND_DOOR_WORLD, max_steps=2), policy, TASK)
        body = server.requests[0].body
        await provider.aclose()
    assert body is not None and body["logprobs"] is True and body["return_token_ids"] is True
    sample = episode.transitions[0].sample
    assert sample is not None and episode.transitions[0].action == "open the door"
    assert (sample.prompt_ids, sample.completion_ids, sample.logprobs) == (
        (1, 2, 3),
        (7, 8, 2),
        (-0.5, -0.25, -0.01),
    )
    assert sample.policy_version == 4 and sample.temperature == 1.0 and sample.text == "open the door"


async def test_a_server_that_returns_no_token_ids_is_an_error() -> None:
    async with OpenAIServer(responder=lambda body: "open the door") as server:
        provider = get_provider("openai/tiny", api_base=server.base_url)
        recording = LLMPolicy(provider, LLMPolicyConfig(record_samples=True))
        with pytest.raises(ProviderError, match="no token ids"):
            await recording.act(TASK, "a room", [], {})
        plain = await LLMPolicy(provider).act(TASK, "a room", [], {})  # not asked: a plain action
        assert plain == "open the door" and sample_of(plain) is None
        assert "return_token_ids" not in (server.requests[-1].body or {})
        await provider.aclose()


async def test_a_local_trainer_learns_from_what_the_server_sampled(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")
    import torch

    from dreamgym_sdk.testing.worlds import build_key_and_door_model, key_and_door_policy
    from dreamgym_sdk.training import GRPOBackend, GRPOBackendConfig

    trainer = key_and_door_policy(build_key_and_door_model(tmp_path / "tiny"), seed=0)
    model, tokenizer = trainer.model, trainer.tokenizer
    generator = torch.Generator().manual_seed(0)

    def sample_like_vllm(body: dict[str, Any]) -> dict[str, Any]:
        """Chat template, sampling at the request's temperature, processed log-probabilities."""
        rendered = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, tokenize=True, return_dict=False
        )
        prompt = [int(i) for i in rendered]
        ids, tokens, logprobs = list(prompt), [], []
        with torch.no_grad():
            for _ in range(body["max_tokens"]):
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float() / body["temperature"]
                logp = torch.log_softmax(logits, dim=-1)
                token = int(torch.multinomial(logp.exp(), 1, generator=generator))
                ids.append(token)
                tokens.append(token)
                logprobs.append(float(logp[token]))
                if token == tokenizer.eos_token_id:
                    break
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        return vllm_answer(body, text, prompt, tokens, logprobs)

    async with OpenAIServer(responder=sample_like_vllm) as server:
        provider = get_provider("openai/tiny", api_base=server.base_url)
        config = LLMPolicyConfig(
            record_samples=True, temperature=1.0, max_tokens=6, prompt_style="transcript"
        )
        policy = LLMPolicy(provider, config)
        runner = RolloutRunner(lambda group: DreamEnv(KEY_AND_DOOR_WORLD, max_steps=1), policy)
        episodes = await runner.run([TASK], group_size=4, seed=0)
        await provider.aclose()

    for episode in episodes:  # the local weights give the recorded tokens the server's probabilities
        sample = episode.transitions[0].sample
        assert sample is not None
        ids = torch.tensor([[*sample.prompt_ids, *sample.completion_ids]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        start = len(sample.prompt_ids) - 1
        local = [float(logp[start + k, t]) for k, t in enumerate(sample.completion_ids)]
        assert local == pytest.approx(list(sample.logprobs), abs=1e-4)
    before = trainer.get_weights()
    # half of the group rewarded: an update whatever the replies were
    backend = GRPOBackend(
        trainer, GRPOBackendConfig(group_size=4, learning_rate=1e-2), reward=lambda e: float(e.group % 2)
    )
    for episode in episodes:
        await backend.observe(episode)
    metrics = await backend.update()
    assert metrics is not None and metrics["optimizer_steps"] == 1 and metrics["policy_tokens"] > 0
    after = trainer.get_weights()
    assert any(not torch.equal(before[k], after[k]) for k in before)
