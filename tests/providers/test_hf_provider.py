"""The local transformers backend on a tiny model built in the test session: answers, sampling
parameters, and dynamic batching (checked through its counters, never through timings)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from anyio.lowlevel import checkpoint

from dreamgym_sdk.providers import ChatRequest, get_provider
from dreamgym_sdk.providers.hf import HFProvider

pytest.importorskip("transformers")


def provider_for(path: Path, **options: object) -> HFProvider:
    provider = get_provider(f"hf:{path}", backend_options=options)
    assert isinstance(provider, HFProvider)
    return provider


async def test_answers_with_usage(tiny_model: Path) -> None:
    async with provider_for(tiny_model) as provider:
        response = await provider.complete(
            ChatRequest.of("you are a world model", "open the door", max_tokens=6)
        )
    assert isinstance(response.text, str)
    assert response.model == f"hf:{tiny_model}"
    assert response.usage.prompt_tokens > 5
    assert 1 <= response.usage.completion_tokens <= 6
    assert response.finish_reason in {"stop", "length"}


async def test_seeded_sampling_is_reproducible_and_batch_independent(tiny_model: Path) -> None:
    req = ChatRequest.of(None, "take the key", temperature=1.0, seed=7, max_tokens=12)
    async with provider_for(tiny_model) as provider:
        alone = await provider.complete(req)
        again = await provider.complete(req)
        results: dict[int, str] = {}

        async def call(i: int) -> None:
            other = ChatRequest.of(None, f"noise {i}", temperature=1.0, max_tokens=12 + i)
            results[i] = (await provider.complete(req if i == 0 else other)).text

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(call, i)
    assert alone.text == again.text == results[0]
    assert provider.stats.max_batch_size > 1


async def test_max_tokens_and_stop_are_honoured(tiny_model: Path) -> None:
    sampled = ChatRequest.of(None, "north", temperature=1.0, seed=11, max_tokens=24)  # random but repeatable
    async with provider_for(tiny_model) as provider:
        full = await provider.complete(sampled)
        assert full.usage.completion_tokens <= 24
        letters = [c for c in full.text if c.isascii() and c.isalnum()]
        assert letters, f"no letter in {full.text!r}"
        stop = letters[len(letters) // 2]
        stopped = await provider.complete(sampled.model_copy(update={"stop": (stop,)}))
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stopped.finish_reason == "stop"
    assert stopped.usage.completion_tokens <= full.usage.completion_tokens


async def test_concurrent_requests_are_coalesced_into_batches(tiny_model: Path) -> None:
    async with provider_for(tiny_model, max_batch_size=8) as provider:
        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(provider.complete, ChatRequest.of(None, f"request {i}", max_tokens=4))
        stats = provider.stats
    assert stats.requests == 16
    assert stats.max_batch_size > 1
    assert stats.max_batch_size <= 8
    assert stats.batches < 16


async def test_cancelled_waiter_leaves_the_batcher_working(tiny_model: Path) -> None:
    async with provider_for(tiny_model) as provider:
        await provider.complete(ChatRequest.of(None, "warm up", max_tokens=2))
        victim = anyio.CancelScope()
        answers: list[str] = []

        async def cancelled_call() -> None:
            with victim:
                await provider.complete(ChatRequest.of(None, "never answered", max_tokens=2))

        async def call() -> None:
            answers.append((await provider.complete(ChatRequest.of(None, "answered", max_tokens=2))).text)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(cancelled_call)
            await checkpoint()
            victim.cancel()
        assert victim.cancelled_caught or len(answers) == 1
        assert len(answers) == 1
        await provider.complete(ChatRequest.of(None, "still works", max_tokens=2))
