"""Every HTTP provider path against a real local server: the lean aiohttp client, the official SDK,
and LiteLLM (``openai/`` and ``hosted_vllm/`` routes)."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from dreamgym_sdk.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
)
from dreamgym_sdk.providers import BaseProvider, ChatRequest, ProviderConfig, RetryPolicy, get_provider
from dreamgym_sdk.providers.litellm import LiteLLMProvider
from dreamgym_sdk.providers.openai_compat import OpenAICompatProvider
from dreamgym_sdk.testing.openai_server import Fault, OpenAIServer

PATHS = ["aiohttp", "openai-sdk", "litellm-openai", "litellm-hosted_vllm"]
KEY = "test-key-9f8e7d6c5b4a3210"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)


def make(path: str, api_base: str, **overrides: Any) -> BaseProvider:
    fields: dict[str, Any] = {
        "api_base": api_base,
        "api_key": KEY,
        "retry": FAST_RETRY,
        "request_timeout": 10.0,
    }
    fields.update(overrides)
    if path == "aiohttp":
        return get_provider("openai/tiny", **fields)
    if path == "openai-sdk":
        return get_provider("openai/tiny", backend_options={"client": "openai"}, **fields)
    if path == "litellm-openai":
        return LiteLLMProvider("openai/tiny", ProviderConfig(**fields))
    return LiteLLMProvider("hosted_vllm/tiny", ProviderConfig(**fields))


def request(text: str = "hello there", **kwargs: Any) -> ChatRequest:
    return ChatRequest.of("be brief", text, **kwargs)


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [float(r.__dict__["delay_s"]) for r in caplog.records if r.getMessage() == "provider.retry"]


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_success(path: str, server: OpenAIServer) -> None:
    async with make(path, server.base_url) as provider:
        response = await provider.complete(request(max_tokens=7, seed=3, stop=("END",)))
    assert response.text == "echo: hello there"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens == 3
    assert response.finish_reason == "stop" and not response.cached
    [sent] = server.requests
    assert sent.body is not None and sent.body["model"] == "tiny"
    assert sent.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent.body["max_tokens"] == 7 and sent.body["seed"] == 3 and sent.body["stop"] == ["END"]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


async def test_structured_output_is_passed_through(path: str, server: OpenAIServer) -> None:
    schema = {"type": "object", "properties": {"reward": {"type": "number"}}, "required": ["reward"]}
    server.responder = lambda body: json.dumps({"reward": 1})
    async with make(path, server.base_url) as provider:
        response = await provider.complete(request(response_schema=schema, schema_name="transition"))
    assert json.loads(response.text) == {"reward": 1}
    body = server.requests[0].body
    assert body is not None
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "transition"
    assert body["response_format"]["json_schema"]["schema"] == schema


async def test_429_with_retry_after_is_retried(
    path: str, server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dreamgym_sdk")
    server.script(Fault.rate_limit(retry_after=0.05))
    async with make(path, server.base_url) as provider:
        response = await provider.complete(request())
    assert response.text == "echo: hello there"
    assert len(server.requests) == 2
    assert retry_delays(caplog) and retry_delays(caplog)[0] >= 0.05  # waited at least Retry-After


async def test_persistent_429_raises_rate_limit_error(path: str, server: OpenAIServer) -> None:
    server.default_fault = Fault.rate_limit(retry_after=0)
    async with make(path, server.base_url) as provider:
        with pytest.raises(RateLimitError):
            await provider.complete(request())
    assert len(server.requests) == FAST_RETRY.max_attempts


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_retried(path: str, server: OpenAIServer, status: int) -> None:
    server.script(Fault.status(status))
    async with make(path, server.base_url) as provider:
        assert (await provider.complete(request())).text == "echo: hello there"
    assert len(server.requests) == 2


async def test_persistent_500_raises_status_error(path: str, server: OpenAIServer) -> None:
    server.default_fault = Fault.status(500)
    async with make(path, server.base_url) as provider:
        with pytest.raises(ProviderStatusError) as info:
            await provider.complete(request())
    assert info.value.status_code == 500
    assert len(server.requests) == FAST_RETRY.max_attempts


async def test_client_error_is_not_retried(path: str, server: OpenAIServer) -> None:
    server.default_fault = Fault.status(400)
    async with make(path, server.base_url) as provider:
        with pytest.raises(ProviderStatusError) as info:
            await provider.complete(request())
    assert info.value.status_code == 400
    assert len(server.requests) == 1


async def test_hanging_server_times_out(path: str, server: OpenAIServer) -> None:
    server.default_fault = Fault.hang()
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.001)
    async with make(path, server.base_url, request_timeout=0.3, retry=retry) as provider:
        with pytest.raises(ProviderTimeoutError):
            await provider.complete(request())
    assert len(server.requests) == 2


async def test_connection_refused(path: str) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with make(path, f"http://127.0.0.1:{port}/v1") as provider:
        with pytest.raises(ProviderConnectionError):
            await provider.complete(request())


@pytest.mark.parametrize(
    "fault", [Fault.malformed(), Fault.malformed('{"no": "choices"}')], ids=["json", "shape"]
)
async def test_malformed_body_is_retried_then_typed(path: str, server: OpenAIServer, fault: Fault) -> None:
    server.script(fault)
    async with make(path, server.base_url) as provider:
        assert (await provider.complete(request())).text == "echo: hello there"
        server.default_fault = fault
        with pytest.raises(ProviderError):
            await provider.complete(request())


async def test_truncated_body_is_retried_then_typed(path: str, server: OpenAIServer) -> None:
    server.script(Fault.truncated())
    async with make(path, server.base_url) as provider:
        assert (await provider.complete(request())).text == "echo: hello there"
        server.default_fault = Fault.truncated()
        with pytest.raises(ProviderConnectionError):
            await provider.complete(request())


async def test_empty_content_is_an_empty_answer(path: str, server: OpenAIServer) -> None:
    server.script(Fault.empty())
    async with make(path, server.base_url) as provider:
        assert (await provider.complete(request())).text == ""


async def test_concurrency_limit_is_honoured(path: str, server: OpenAIServer) -> None:
    limit, waiting = 3, 0
    full = anyio.Event()

    async def responder(body: dict[str, Any]) -> str:
        nonlocal waiting
        waiting += 1
        if waiting >= limit:
            full.set()
        with anyio.move_on_after(5):  # a safety net only: the limit is reached long before
            await full.wait()
        waiting -= 1
        return "ok"

    server.responder = responder
    async with (
        make(path, server.base_url, max_concurrency=limit) as provider,
        anyio.create_task_group() as tg,
    ):
        for _ in range(12):
            tg.start_soon(provider.complete, request())
    assert len(server.requests) == 12
    assert server.max_in_flight == limit


async def test_api_key_never_logged(
    path: str, server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, LiteLLM's included
    server.script(Fault.rate_limit(retry_after=0), Fault.status(500), None, Fault.status(401))
    async with make(path, server.base_url) as provider:
        await provider.complete(request())
        with pytest.raises(ProviderStatusError):
            await provider.complete(request())
        assert KEY not in repr(provider) and KEY not in repr(provider.config)
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # the key was used...
    assert any(r.getMessage() == "provider.retry" for r in caplog.records)
    for record in caplog.records:  # ...and never logged
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.__dict__)
    assert KEY not in caplog.text


async def test_cache_hit_and_miss(path: str, server: OpenAIServer, tmp_path: Path) -> None:
    async with make(path, server.base_url, cache_dir=tmp_path) as provider:
        first = await provider.complete(request(temperature=0))
        second = await provider.complete(request(temperature=0))
        assert not first.cached and second.cached and second.text == first.text
        assert len(server.requests) == 1
        await provider.complete(request(temperature=0.7))  # sampled without a seed: never cached
        await provider.complete(request(temperature=0.7))
        assert len(server.requests) == 3
        await provider.complete(request(temperature=0.7, seed=1))
        assert (await provider.complete(request(temperature=0.7, seed=1))).cached
        await provider.complete(request(temperature=0, max_tokens=9))  # another parameter: a miss
        assert len(server.requests) == 5
    async with make(path, server.base_url, cache_dir=tmp_path) as again:  # persisted on disk
        assert (await again.complete(request(temperature=0))).cached
    assert len(server.requests) == 5


async def test_per_call_deadline(server: OpenAIServer) -> None:
    server.default_fault = Fault.hang()
    async with make("aiohttp", server.base_url, deadline=0.3, request_timeout=None) as provider:
        with pytest.raises(ProviderTimeoutError):
            await provider.complete(request())


async def test_retry_after_beyond_deadline_fails_fast(server: OpenAIServer) -> None:
    server.default_fault = Fault.rate_limit(retry_after=30)
    async with make("aiohttp", server.base_url, deadline=5.0) as provider:
        with pytest.raises(RateLimitError):
            await provider.complete(request())
    assert len(server.requests) == 1


@pytest.mark.parametrize("client", ["aiohttp", "openai"])
async def test_extra_params_and_headers_are_sent(server: OpenAIServer, client: str) -> None:
    options = {"headers": {"X-Team": "dream"}, "client": client}
    async with make(
        "aiohttp", server.base_url, extra_params={"top_k": 20}, backend_options=options
    ) as provider:
        await provider.complete(request(top_p=0.9, seed=3, stop=("END",)))
    [sent] = server.requests
    assert sent.body is not None
    assert (sent.body["top_k"], sent.body["top_p"], sent.body["seed"], sent.body["stop"]) == (
        20,
        0.9,
        3,
        ["END"],
    )
    assert sent.body["model"] == "tiny"
    headers = {name.lower(): value for name, value in sent.headers.items()}
    assert headers["x-team"] == "dream"
    assert headers["authorization"] == f"Bearer {KEY}"


async def test_closed_provider_refuses_calls(server: OpenAIServer) -> None:
    provider = make("aiohttp", server.base_url)
    assert isinstance(provider, OpenAICompatProvider)
    await provider.aclose()
    await provider.aclose()  # idempotent
    with pytest.raises(ProviderError):
        await provider.complete(request())


async def test_litellm_reports_cost_when_the_model_is_priced(server: OpenAIServer) -> None:
    async with LiteLLMProvider(
        "openai/gpt-4o-mini", ProviderConfig(api_base=server.base_url, api_key=SecretStr(KEY))
    ) as p:
        priced = await p.complete(request())
    async with make("litellm-hosted_vllm", server.base_url) as p:
        unpriced = await p.complete(request())
    assert priced.usage.cost_usd is not None and priced.usage.cost_usd > 0
    assert unpriced.usage.cost_usd is None
