"""Idle expiry, graceful shutdown (no acknowledged step is lost), health, metrics and the schema."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from anyio import wait_all_tasks_blocked
from serve_helpers import AUTH_A, TOKEN_A, running, task, world

from dreamgym_sdk import EventBus, Overflow, TransitionRecorded
from dreamgym_sdk.errors import DreamGymError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.serve import Client, ReconnectPolicy, ServerUnavailableError, SessionClosedError
from dreamgym_sdk.testing import FunctionExperienceModel


async def wait_for(predicate: Any, bound: float = 10.0) -> None:
    """Poll ``predicate`` (bounded): only for the reaper, which runs on its own clock."""
    with anyio.fail_after(bound):
        while not predicate():  # noqa: ASYNC110  (no event to wait for: the reaper runs on a timer)
            await anyio.sleep(0.02)


async def test_idle_sessions_expire_and_their_owner_is_told() -> None:
    async with (
        running(idle_timeout=0.2) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH_A) as http,
        Client(server.url, token=TOKEN_A) as env,
    ):
        sid = (await http.post("/sessions")).json()["session_id"]
        await env.reset(task=task("idle", 5))
        await wait_for(lambda: server.metrics.sessions_expired == 2)
        assert server.metrics.sessions_active == 0
        response = await http.get(f"/sessions/{sid}/state")
        assert response.status_code == 410
        assert response.json()["error"]["reason"] == "expired"
        with pytest.raises(SessionClosedError) as caught:
            await env.step("late")
        assert caught.value.reason == "expired"
        obs, _ = await env.reset(task=task("back", 2))  # a reset opens a new session
        assert obs == "start:back"


async def test_a_busy_session_is_not_expired() -> None:
    gate, entered = anyio.Event(), anyio.Event()

    async def slow(request: ExperienceRequest) -> dict[str, Any]:
        if request.action == "slow":
            entered.set()
            await gate.wait()
        return world(request)

    async with (
        running(FunctionExperienceModel(slow, initial_state="s"), idle_timeout=0.1) as server,
        Client(server.url, token=TOKEN_A) as busy,
        Client(server.url, token=TOKEN_A) as idle,
    ):
        await busy.reset(task=task("busy", 5))
        await idle.reset(task=task("idle", 5))
        results: list[str] = []
        async with anyio.create_task_group() as tg:

            async def step() -> None:
                results.append((await busy.step("slow")).observation)

            tg.start_soon(step)
            await entered.wait()
            await wait_for(lambda: server.metrics.sessions_expired == 1)  # the idle one, not the busy one
            gate.set()
        assert results == ["busy|0|slow"]


async def test_shutdown_finishes_in_flight_steps_and_refuses_new_work() -> None:
    gate, entered = anyio.Event(), anyio.Event()

    async def slow(request: ExperienceRequest) -> dict[str, Any]:
        if request.action == "slow":
            entered.set()
            await gate.wait()
        return world(request)

    bus = EventBus()
    recorded = bus.subscribe(TransitionRecorded)
    policy = ReconnectPolicy(attempts=1)
    model = FunctionExperienceModel(slow, initial_state="s")
    async with running(model, bus=bus) as server:
        url = server.url
        async with (
            Client(url, token=TOKEN_A, reconnect=policy) as env,
            httpx.AsyncClient(base_url=url) as http,
        ):
            await env.reset(task=task("drain", 5))
            acknowledged: list[str] = []
            async with anyio.create_task_group() as tg:

                async def step() -> None:
                    acknowledged.append((await env.step("slow")).info["transition_id"])

                tg.start_soon(step)
                await entered.wait()
                tg.start_soon(server.shutdown)
                await wait_all_tasks_blocked()
                assert server.service.draining
                health = await http.get("/health")
                assert (health.status_code, health.json()["status"]) == (503, "draining")
                refused = await http.post("/sessions", headers=AUTH_A)
                assert (refused.status_code, refused.json()["error"]["type"]) == (503, "shutting_down")
                gate.set()
            assert len(acknowledged) == 1
            assert recorded.receive_nowait().transition.id == acknowledged[0]
            with pytest.raises(ServerUnavailableError):
                await env.step("after")


async def test_shutdown_cancels_what_outlives_the_grace_period_and_answers_it() -> None:
    entered = anyio.Event()

    async def stuck(request: ExperienceRequest) -> dict[str, Any]:
        if request.action == "stuck":
            entered.set()
            await anyio.sleep_forever()
        return world(request)

    bus = EventBus()
    recorded = bus.subscribe(TransitionRecorded)
    model = FunctionExperienceModel(stuck, initial_state="s")
    async with (
        running(model, bus=bus, shutdown_grace=0.1) as server,
        Client(server.url, token=TOKEN_A, reconnect=ReconnectPolicy(attempts=1)) as env,
    ):
        await env.reset(task=task("stuck", 5))
        errors: list[ServerUnavailableError] = []
        async with anyio.create_task_group() as tg:

            async def step() -> None:
                try:
                    await env.step("stuck")
                except ServerUnavailableError as exc:
                    errors.append(exc)

            tg.start_soon(step)
            await entered.wait()
            await server.shutdown()
        assert len(errors) == 1 and errors[0].type == "shutting_down"
    with pytest.raises(anyio.WouldBlock):
        recorded.receive_nowait()  # the cancelled step left no half-recorded transition


async def test_shutdown_under_load_loses_no_acknowledged_step() -> None:
    async def model_latency(request: ExperienceRequest) -> dict[str, Any]:
        await anyio.sleep(0.001)  # keeps steps in flight while the server shuts down
        return world(request)

    bus = EventBus()
    recorded = bus.subscribe(TransitionRecorded, maxsize=100_000, overflow=Overflow.ERROR)
    acknowledged: set[str] = set()
    enough = anyio.Event()
    policy = ReconnectPolicy(attempts=2, initial_backoff=0.01)

    async def play(server_url: str, i: int) -> None:
        transport = "http" if i % 5 == 0 else "websocket"
        async with Client(server_url, token=TOKEN_A, transport=transport, reconnect=policy) as env:
            try:
                await env.reset(task=task(f"load-{i}", 10_000))
                for k in range(2_000):
                    result = await env.step(f"a{k}")
                    acknowledged.add(result.info["transition_id"])
                    if len(acknowledged) >= 400:
                        enough.set()
            except DreamGymError:
                return  # refused or disconnected by the shutdown: not acknowledged

    model = FunctionExperienceModel(model_latency, initial_state="s")
    with anyio.fail_after(60):
        async with running(model, bus=bus, max_steps=10_000) as server, anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(play, server.url, i)
            await enough.wait()
            await server.shutdown()
    executed = set()
    while True:
        try:
            executed.add(recorded.receive_nowait().transition.id)
        except anyio.WouldBlock:
            break
    assert len(acknowledged) >= 400
    assert acknowledged <= executed, "an acknowledged step is missing from the server's record"
    assert executed == acknowledged, "a step ran but its answer never reached the client"


async def test_health_metrics_and_openapi_schema() -> None:
    async with running() as server, httpx.AsyncClient(base_url=server.url, headers=AUTH_A) as http:
        async with Client(server.url, token=TOKEN_A) as env:
            await env.reset(task=task("m", 2))
            await env.step("a")
            await env.step("b")
        await http.post("/sessions/missing/step", json={"action": "x"})
        metrics = (await http.get("/metrics")).json()
        assert metrics["sessions"] == {"active": 0, "created": 1, "closed": 1, "expired": 0}
        assert (metrics["steps"], metrics["resets"]) == (2, 1)
        assert metrics["errors"] == {"session_not_found": 1}
        assert metrics["requests"]["websocket"] == 4  # reset, step, step, close
        step_latency = metrics["latency_ms"]["step"]
        assert step_latency["count"] == 2 and 0 < step_latency["p50"] <= step_latency["p99"]
        text = (await http.get("/metrics", params={"format": "prometheus"})).text
        assert "dreamgym_serve_steps_total 2" in text
        assert 'dreamgym_serve_step_seconds{quantile="0.99"}' in text
        health = (await http.get("/health")).json()
        assert health["status"] == "healthy"
        schema = (await http.get("/openapi.json")).json()
        paths = set(schema["paths"])
        assert {"/sessions", "/sessions/{session_id}/reset", "/sessions/{session_id}/step"} <= paths
        assert {"/sessions/{session_id}/state", "/sessions/{session_id}", "/health", "/metrics"} <= paths
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert schema == server.app.openapi()
