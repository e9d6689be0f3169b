"""``check_provider`` against every provider the SDK ships (over a real HTTP server on 127.0.0.1 where the
provider speaks HTTP), and against providers that break the protocol in one way each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dreamgym_sdk.errors import ConformanceError
from dreamgym_sdk.providers import ChatRequest, ChatResponse, ProviderConfig, RetryPolicy, Usage, get_provider
from dreamgym_sdk.providers.litellm import LiteLLMProvider
from dreamgym_sdk.testing import FunctionProvider, ScriptedProvider, check_provider
from dreamgym_sdk.testing.openai_server import OpenAIServer

FAST = {"retry": RetryPolicy(max_attempts=2, initial_backoff=0.001), "request_timeout": 10.0}


@pytest.mark.parametrize("route", ["aiohttp", "openai-sdk", "litellm", "cached"])
async def test_the_http_providers_conform(server: OpenAIServer, route: str, tmp_path: Path) -> None:
    fields: dict[str, Any] = {"api_base": server.base_url, "api_key": "k", **FAST}
    if route == "litellm":
        pytest.importorskip("litellm")
        provider: Any = LiteLLMProvider("openai/tiny", ProviderConfig(**fields))
    elif route == "openai-sdk":
        provider = get_provider("openai/tiny", backend_options={"client": "openai"}, **fields)
    else:
        provider = get_provider("openai/tiny", cache_dir=tmp_path if route == "cached" else None, **fields)
    await check_provider(provider, check_determinism=True)  # the server echoes: deterministic
    # one request reached the server through the cache, which answered the others
    assert len(server.requests) == 1 if route == "cached" else len(server.requests) >= 6


async def test_the_local_hf_provider_conforms(tiny_model: Path) -> None:
    pytest.importorskip("transformers")
    await check_provider(get_provider(f"hf:{tiny_model}"), check_determinism=True)


async def test_the_test_doubles_conform() -> None:
    await check_provider(FunctionProvider(lambda r: r.messages[-1].content), check_determinism=True)
    await check_provider(ScriptedProvider(["hello"] * 8))


class Broken(FunctionProvider):
    def __init__(self, answer: Any, model: str = "test/broken") -> None:
        super().__init__(lambda _: "", model=model)
        self.answer = answer

    async def complete(self, request: ChatRequest) -> Any:
        return self.answer


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        (Broken("just text"), "must return ChatResponse"),
        (Broken(ChatResponse(text="", model="m"), model=""), "non-empty string"),
        (Broken(ChatResponse(text="", model="m", usage=Usage(cost_usd=-1.0))), "cost"),
        (Broken(ChatResponse(text="", model="m", latency_s=-0.5)), "latency"),
    ],
)
async def test_a_provider_that_breaks_the_protocol_fails(provider: Any, reason: str) -> None:
    with pytest.raises(ConformanceError, match=reason):
        await check_provider(provider)


async def test_mismatched_log_probabilities_fail() -> None:
    wrong = ChatResponse(text="hi", model="m", token_ids=(1, 2, 3), logprobs=(-0.1, -0.2))
    with pytest.raises(ConformanceError, match="3 answer tokens, 2 log-probabilities"):
        await check_provider(Broken(wrong), request=ChatRequest.of(None, "hi", logprobs=True))
    positive = ChatResponse(text="hi", model="m", token_ids=(1,), logprobs=(0.5,))
    with pytest.raises(ConformanceError, match="above 0"):
        await check_provider(Broken(positive), request=ChatRequest.of(None, "hi", logprobs=True))


async def test_a_nondeterministic_provider_fails_the_determinism_check() -> None:
    counter = iter(range(100))
    provider = FunctionProvider(lambda _: f"answer {next(counter)}")
    await check_provider(provider)  # fine unless determinism is asked for
    with pytest.raises(ConformanceError, match="different answers"):
        await check_provider(FunctionProvider(lambda _: f"answer {next(counter)}"), check_determinism=True)
