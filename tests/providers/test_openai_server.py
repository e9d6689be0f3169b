"""The fake OpenAI server itself: records requests, scripts faults in order, stops cleanly."""

from __future__ import annotations

import json

import aiohttp

from dreamgym_sdk.testing.openai_server import Fault, OpenAIServer, serve_in_subprocess


async def post(url: str, body: object) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/chat/completions", json=body) as response,
    ):
        return response.status, await response.read()


async def test_records_and_answers() -> None:
    async with OpenAIServer() as server:
        status, raw = await post(
            server.base_url, {"model": "m", "messages": [{"role": "user", "content": "a b"}]}
        )
        assert status == 200
        data = json.loads(raw)
        assert data["choices"][0]["message"]["content"] == "echo: a b"
        assert data["usage"]["prompt_tokens"] == 2
        assert server.requests[0].body == {"model": "m", "messages": [{"role": "user", "content": "a b"}]}


async def test_scripted_faults_apply_in_order_then_default() -> None:
    async with OpenAIServer(default_fault=Fault.status(503)) as server:
        server.script(Fault.rate_limit(retry_after=2), None)
        body = {"model": "m", "messages": []}
        assert (await post(server.base_url, body))[0] == 429
        assert (await post(server.base_url, body))[0] == 200
        assert (await post(server.base_url, body))[0] == 503


async def test_non_json_request_is_rejected() -> None:
    async with OpenAIServer() as server:
        assert (await post(server.base_url, "not an object"))[0] == 400


async def test_runs_in_a_subprocess() -> None:
    async with serve_in_subprocess(content="fixed") as base_url:
        status, raw = await post(base_url, {"model": "m", "messages": []})
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "fixed"
