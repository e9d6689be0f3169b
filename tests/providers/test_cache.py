"""The on-disk response cache: what is cached, the key, persistence and concurrent use."""

from __future__ import annotations

from pathlib import Path

import anyio

from dreamgym_sdk.providers import ChatRequest, ChatResponse, ProviderConfig, ResponseCache
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.cache import cache_key, is_cacheable


def test_only_deterministic_requests_are_cacheable() -> None:
    assert is_cacheable(ChatRequest.of(None, "x", temperature=0))
    assert is_cacheable(ChatRequest.of(None, "x", temperature=0.9, seed=1))
    assert not is_cacheable(ChatRequest.of(None, "x", temperature=0.9))


def test_key_covers_model_prompt_params_schema_and_extras() -> None:
    req = ChatRequest.of("s", "u")
    base = cache_key("m", req)
    assert cache_key("m", ChatRequest.of("s", "u")) == base
    assert cache_key("m2", req) != base
    assert cache_key("m", ChatRequest.of("s", "u2")) != base
    assert cache_key("m", req.model_copy(update={"seed": 1})) != base
    assert cache_key("m", req.model_copy(update={"stop": ("x",)})) != base
    assert cache_key("m", req.model_copy(update={"response_schema": {"type": "object"}})) != base
    assert cache_key("m", req, {"top_k": 5}) != base


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    response = ChatResponse(text="hi", model="m")
    assert cache.get_sync("k") is None
    cache.put_sync("k", response)
    cache.close()
    reopened = ResponseCache(tmp_path)
    hit = reopened.get_sync("k")
    assert hit is not None and hit.text == "hi" and hit.cached
    assert len(reopened) == 1 and reopened.hits == 1
    reopened.close()


class CountingProvider(BaseProvider):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__("counting", config)
        self.calls = 0

    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        return ChatResponse(text=request.messages[-1].content.upper(), model=self.model)


async def test_concurrent_users_share_one_cache(tmp_path: Path) -> None:
    config = ProviderConfig(cache_dir=tmp_path)
    providers = [CountingProvider(config) for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for p in providers:
            for i in range(20):
                tg.start_soon(p.complete, ChatRequest.of(None, f"q{i}"))
    async with anyio.create_task_group() as tg:
        for p in providers:
            for i in range(20):
                tg.start_soon(p.complete, ChatRequest.of(None, f"q{i}"))
    assert sum(p.calls for p in providers) <= 60  # the second round was answered from the cache only
    cache = providers[0].cache
    assert cache is not None and len(cache) == 20
    answer = await providers[1].complete(ChatRequest.of(None, "q3"))
    assert answer.cached and answer.text == "Q3"
    for p in providers:
        await p.aclose()
