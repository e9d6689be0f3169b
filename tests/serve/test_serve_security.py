"""Bad input and security: every refusal is a clear 4xx with a machine-readable body, sessions stay
with their owner, limits hold, and no token or API key reaches a log or an error body."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from serve_helpers import AUTH_A, AUTH_B, TOKEN_A, TOKEN_B, running, task, world

from dreamgym_sdk.errors import ExperienceModelError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.serve import Client, PayloadTooLargeError, RateLimitedError
from dreamgym_sdk.testing import FunctionExperienceModel


def assert_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    error = body["error"]
    assert set(error) >= {"type", "code", "status", "message"}
    assert (error["type"], error["code"], error["status"]) == (kind, kind.upper(), status)
    assert TOKEN_A not in response.text and TOKEN_B not in response.text
    return error


async def open_session(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await http.post("/sessions", headers=headers)
    assert response.status_code == 201
    sid = response.json()["session_id"]
    assert (await http.post(f"/sessions/{sid}/reset", headers=headers, json={"task": "t"})).status_code == 200
    return sid


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with running() as server, httpx.AsyncClient(base_url=server.url) as http:
        yield server, http


async def test_missing_or_wrong_tokens_get_401_everywhere() -> None:
    async with running() as server, httpx.AsyncClient(base_url=server.url) as http:
        sid = await open_session(http, AUTH_A)
        calls = [
            ("POST", "/sessions", None),
            ("POST", f"/sessions/{sid}/reset", {"task": "t"}),
            ("POST", f"/sessions/{sid}/step", {"action": "a"}),
            ("GET", f"/sessions/{sid}/state", None),
            ("DELETE", f"/sessions/{sid}", None),
            ("GET", "/metrics", None),
        ]
        bad_headers: list[dict[str, str]] = [
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {TOKEN_A}"},
            {"Authorization": f"Bearer {TOKEN_A}x"},
            {"Authorization": "Bearer"},
        ]
        for method, path, body in calls:
            for headers in bad_headers:
                response = await http.request(method, path, json=body, headers=headers)
                assert_error(response, 401, "unauthorized")
                assert response.headers["www-authenticate"] == "Bearer"
        assert (await http.get(f"/sessions/{sid}/state", headers=AUTH_A)).json()["step_count"] == 0
        # the WebSocket handshake is refused with the same status
        async with aiohttp.ClientSession() as ws_http:
            for headers in bad_headers:
                with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                    await ws_http.ws_connect(server.ws_url, headers=headers)
                assert caught.value.status == 401
        # health and schema need no token
        assert (await http.get("/health")).json()["status"] == "healthy"
        assert "action" in (await http.get("/schema")).json()


async def test_another_token_never_sees_a_session() -> None:
    async with running() as server, httpx.AsyncClient(base_url=server.url) as http:
        sid = await open_session(http, AUTH_A)
        unknown = "0" * 32
        for target in (sid, unknown):
            for method, path, body in [
                ("POST", f"/sessions/{target}/reset", {"task": "t"}),
                ("POST", f"/sessions/{target}/step", {"action": "a"}),
                ("GET", f"/sessions/{target}/state", None),
                ("DELETE", f"/sessions/{target}", None),
            ]:
                error = assert_error(
                    await http.request(method, path, json=body, headers=AUTH_B), 404, "session_not_found"
                )
                assert target not in error["message"]
        async with aiohttp.ClientSession(headers=AUTH_B) as ws_http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await ws_http.ws_connect(server.ws_url, params={"session_id": sid})
            assert caught.value.status == 404
        state = (await http.get(f"/sessions/{sid}/state", headers=AUTH_A)).json()
        assert (state["step_count"], state["session_id"]) == (0, sid)  # untouched by the other token
        # closed sessions: 410 for their owner, still 404 for anyone else
        assert (await http.delete(f"/sessions/{sid}", headers=AUTH_A)).status_code == 204
        error = assert_error(
            await http.post(f"/sessions/{sid}/step", headers=AUTH_A, json={"action": "a"}),
            410,
            "session_closed",
        )
        assert error["reason"] == "closed"
        assert_error(
            await http.post(f"/sessions/{sid}/step", headers=AUTH_B, json={"action": "a"}),
            404,
            "session_not_found",
        )


async def test_malformed_requests_get_clear_4xx() -> None:
    async with running() as server, httpx.AsyncClient(base_url=server.url, headers=AUTH_A) as http:
        sid = await open_session(http, AUTH_A)
        step = f"/sessions/{sid}/step"
        json_headers = {"Content-Type": "application/json"}
        assert_error(await http.post(step, content=b"{not json", headers=json_headers), 400, "invalid_json")
        assert_error(await http.post(step, content=b"\xff\xfe", headers=json_headers), 400, "invalid_json")
        error = assert_error(await http.post(step, json={"action": 3}), 422, "validation_error")
        assert error["details"][0]["loc"] == ["body", "action"]
        assert "3" not in json.dumps(error["details"])  # inputs are never echoed
        assert_error(await http.post(step, json={"action": "a", "extra": 1}), 422, "validation_error")
        assert_error(await http.post(step, json=["action"]), 422, "validation_error")
        assert_error(await http.post(step, json=None), 422, "validation_error")
        reset = f"/sessions/{sid}/reset"
        assert_error(await http.post(reset, json={"seed": "1"}), 422, "validation_error")
        assert_error(await http.post(reset, json={"seed": True}), 422, "validation_error")
        assert_error(await http.post(reset, json={"seed": 2**70}), 422, "validation_error")
        assert_error(await http.post(reset, json={"task": {"no_instruction": 1}}), 422, "validation_error")
        assert_error(
            await http.post(reset, json={"task": "t", "options": {"initial_state": 5}}),
            422,
            "validation_error",
        )
        assert_error(await http.post(reset, json={}), 422, "invalid_argument")  # DreamEnv needs a task
        assert_error(await http.post(step, json={"action": "a"}), 409, "reset_needed")  # after a failed reset
        assert (await http.post(reset, json={"task": "t"})).status_code == 200
        assert_error(await http.get("/metrics", params={"format": "xml"}), 422, "invalid_argument")
        assert_error(await http.get("/nowhere"), 404, "not_found")
        assert_error(await http.put(step, json={"action": "a"}), 405, "method_not_allowed")
        # order errors
        fresh = (await http.post("/sessions")).json()["session_id"]
        assert_error(await http.post(f"/sessions/{fresh}/step", json={"action": "a"}), 409, "reset_needed")
        for _ in range(3):
            assert (await http.post(step, json={"action": "a"})).status_code == 200
        assert_error(await http.post(step, json={"action": "a"}), 409, "episode_finished")
        assert server.metrics.errors["validation_error"] >= 7


async def test_oversized_bodies_get_413() -> None:
    async with (
        running(max_request_bytes=4096) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH_A) as http,
    ):
        sid = await open_session(http, AUTH_A)
        big = {"action": "x" * 5000}
        assert_error(await http.post(f"/sessions/{sid}/step", json=big), 413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while streaming
            yield b'{"action": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        response = await http.post(
            f"/sessions/{sid}/step", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_error(response, 413, "payload_too_large")
        assert (await http.get(f"/sessions/{sid}/state")).json()["step_count"] == 0
        # over the WebSocket the message is refused and the socket closed with 1009
        async with Client(server.url, token=TOKEN_A, reconnect=None) as env:
            await env.reset(task=task("big", 3))
            with pytest.raises(PayloadTooLargeError):
                await env.step("y" * 5000)
            assert (await env.step("small")).observation == "big|0|small"  # reconnects to its session


async def test_rate_limits_per_token_answer_429() -> None:
    async with (
        running(rate_limit=1.0, rate_burst=3) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        statuses = [(await http.get("/metrics", headers=AUTH_A)).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        limited = await http.get("/metrics", headers=AUTH_A)
        error = assert_error(limited, 429, "rate_limited")
        assert error["retry_after"] > 0 and int(limited.headers["retry-after"]) >= 1
        assert (
            await http.get("/metrics", headers=AUTH_B)
        ).status_code == 200  # another token has its own bucket
        async with Client(server.url, token=TOKEN_B) as env:
            await env.reset(task=task("t"))
            await env.step("a")
            with pytest.raises(RateLimitedError) as caught:
                await env.step("b")
            assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_session_limits() -> None:
    async with (
        running(max_sessions_per_token=2, max_sessions=3) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        for _ in range(2):
            assert (await http.post("/sessions", headers=AUTH_A)).status_code == 201
        assert_error(await http.post("/sessions", headers=AUTH_A), 429, "too_many_sessions")
        assert (await http.post("/sessions", headers=AUTH_B)).status_code == 201
        assert_error(await http.post("/sessions", headers=AUTH_B), 503, "capacity_reached")
        assert server.metrics.sessions_active == 3


async def test_secrets_never_reach_logs_or_error_bodies(caplog: pytest.LogCaptureFixture) -> None:
    api_key = "sk-live-abcdefghijklmnop0123"

    def leaky(request: ExperienceRequest) -> dict[str, Any]:
        if request.action == "leak":
            raise ExperienceModelError(f"provider refused key {api_key} with Bearer {TOKEN_A}")
        if request.action == "crash":
            raise RuntimeError(f"crashed holding {TOKEN_B}")
        return world(request)

    model = FunctionExperienceModel(leaky, initial_state="s")
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    async with (
        running(model, api_key=api_key, access_log=True) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        sid = await open_session(http, AUTH_A)
        for action in ("leak", "crash", "ok"):
            response = await http.post(f"/sessions/{sid}/step", headers=AUTH_A, json={"action": action})
            bodies.append(response.text)
        bodies.append((await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN_A}-typo"})).text)
        bodies.append((await http.get("/metrics", headers=AUTH_B)).text)
        async with aiohttp.ClientSession() as ws_http:
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await ws_http.ws_connect(server.ws_url, headers={"Authorization": f"Bearer {TOKEN_B}-typo"})
    assert json.loads(bodies[0])["error"]["type"] == "env_error"
    assert "***" in json.loads(bodies[0])["error"]["message"]
    assert json.loads(bodies[1])["error"]["type"] == "internal_error"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "environment error" in logged and "environment failed unexpectedly" in logged
    for secret in (api_key, TOKEN_A, TOKEN_B):
        assert secret not in logged
        for body in bodies:
            assert secret not in body
