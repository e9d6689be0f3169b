"""The client is an Env: conformance, rollouts, the sync façade, typed errors, reconnection."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from serve_helpers import AUTH_A, TOKEN_A, TOKEN_B, running, task, world

from dreamgym_sdk import (
    EnvClosedError,
    EpisodeFinishedError,
    EventBus,
    ResetNeededError,
    RolloutRunner,
    Source,
    TransitionRecorded,
)
from dreamgym_sdk.errors import ExperienceModelError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.serve import (
    AuthenticationError,
    Client,
    RemoteEnvError,
    SessionClosedError,
)
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy, check_env
from dreamgym_sdk.types import Provenance

TRANSPORTS = ["websocket", "http"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_passes_check_env(transport: Any) -> None:
    async with running() as server:
        env = Client(server.url, token=TOKEN_A, transport=transport)
        fresh = Client(server.url, token=TOKEN_A, transport=transport)
        await check_env(env, task=task("conform", length=4), fresh_env=fresh)
        await fresh.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_step_results_and_recorded_episode_match_the_server(transport: Any) -> None:
    async with running() as server, Client(server.url, token=TOKEN_A, transport=transport) as env:
        the_task = task("fetch", length=2)
        obs, info = await env.reset(task=the_task, seed=7)
        assert obs == "start:fetch"
        assert info["task"] == the_task
        r1 = await env.step("look")
        assert (r1.observation, r1.reward, r1.terminated, r1.truncated) == ("fetch|0|look", 0.0, False, False)
        assert isinstance(r1.info["provenance"], Provenance)
        assert r1.info["provenance"].model == "world"
        r2 = await env.step("grab")
        assert (r2.observation, r2.reward, r2.terminated) == ("fetch|1|grab", 1.0, True)
        episode = env.episode
        assert episode is not None and episode.done and episode.success
        assert episode.id == info["episode_id"]
        assert [t.id for t in episode.transitions] == [r1.info["transition_id"], r2.info["transition_id"]]
        assert [t.state for t in episode.transitions] == ["start:fetch", "fetch|0|look"]
        assert all(t.source is Source.SYNTHETIC for t in episode.transitions)
        state = await env.state()
        assert (state.step_count, state.done, state.session_id) == (2, True, env.session_id)
        with pytest.raises(EpisodeFinishedError):
            await env.step("again")


async def test_plugs_into_the_rollout_runner_like_a_local_env() -> None:
    bus = EventBus()
    async with running() as server:
        seen = bus.subscribe(TransitionRecorded)
        runner = RolloutRunner(
            lambda _: Client(server.url, token=TOKEN_A), FunctionPolicy(lambda *_: "go"), bus=bus
        )
        tasks = [task("alpha", 2), task("beta", 3)]
        episodes = await runner.run(tasks, group_size=3, seed=0)
        assert [e.task.instruction for e in episodes] == ["alpha"] * 3 + ["beta"] * 3
        assert [len(e) for e in episodes] == [2] * 3 + [3] * 3
        assert [e.group for e in episodes] == [0, 1, 2] * 2
        recorded = [seen.receive_nowait().transition for _ in range(sum(len(e) for e in episodes))]
        assert {t.id for t in recorded} == {t.id for e in episodes for t in e.transitions}
        assert all(t.source is Source.SYNTHETIC and t.provenance.model == "world" for t in recorded)
        assert server.metrics.sessions_active == 0  # the runner closed every client


async def test_sync_facade_runs_an_episode_from_a_thread() -> None:
    async with running() as server:

        def play() -> list[str]:
            with Client(server.url, token=TOKEN_A).sync() as env:
                obs, _ = env.reset(task=task("sync", 2))
                seen = [obs]
                for action in ("a", "b"):
                    seen.append(env.step(action).observation)
                assert env.episode is not None and env.episode.done
                return seen

        assert await anyio.to_thread.run_sync(play) == ["start:sync", "sync|0|a", "sync|1|b"]
        assert server.metrics.sessions_active == 0


async def test_local_order_errors_and_close() -> None:
    async with running() as server:
        env = Client(server.url, token=TOKEN_A)
        with pytest.raises(ResetNeededError):
            await env.step("too early")
        await env.reset(task=task("x"))
        await env.close()
        await env.close()
        with pytest.raises(EnvClosedError):
            await env.step("late")
        with pytest.raises(EnvClosedError):
            await env.reset(task=task("x"))
        assert server.metrics.sessions_closed == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_session_closed_elsewhere_raises_session_closed(transport: Any) -> None:
    async with running() as server, Client(server.url, token=TOKEN_A, transport=transport) as env:
        await env.reset(task=task("x", 5))
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.delete(f"/sessions/{env.session_id}", headers=AUTH_A)).status_code == 204
        with pytest.raises(SessionClosedError) as caught:
            await env.step("a")
        assert isinstance(caught.value, EnvClosedError) and caught.value.reason == "closed"
        obs, _ = await env.reset(task=task("again", 2))  # a reset opens a new session
        assert obs == "start:again"
        assert (await env.step("a")).observation == "again|0|a"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_wrong_token_raises_authentication_error(transport: Any) -> None:
    async with running() as server:
        for token in ("nope", None):
            async with Client(server.url, token=token, transport=transport) as env:
                with pytest.raises(AuthenticationError):
                    await env.reset(task=task("x"))


async def test_environment_failures_become_remote_env_errors_and_the_server_keeps_serving() -> None:
    def fragile(request: ExperienceRequest) -> dict[str, Any]:
        if request.action == "model-error":
            raise ExperienceModelError("the model gave up")
        if request.action == "bug":
            raise RuntimeError("boom")
        return world(request)

    model = FunctionExperienceModel(fragile, initial_state="s")
    async with running(model) as server, Client(server.url, token=TOKEN_A) as env:
        await env.reset(task=task("x", 5))
        with pytest.raises(RemoteEnvError) as caught:
            await env.step("model-error")
        assert (caught.value.type, caught.value.status) == ("env_error", 502)
        assert "the model gave up" in str(caught.value)
        with pytest.raises(RemoteEnvError) as caught:
            await env.step("bug")
        assert (caught.value.type, caught.value.status) == ("internal_error", 500)
        assert "boom" not in str(caught.value)  # internal details stay in the server log
        assert (await env.step("fine")).observation == "x|0|fine"


async def test_reconnects_to_the_same_session_after_a_dropped_socket() -> None:
    async with running() as server, Client(server.url, token=TOKEN_A) as env:
        await env.reset(task=task("keep", 4))
        await env.step("a")
        sid = env.session_id
        ws = env._transport._ws  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
        await ws.close()
        result = await env.step("b")
        assert result.observation == "keep|1|b"
        assert env.session_id == sid
        assert (await env.state()).step_count == 2


async def test_a_step_whose_answer_was_lost_runs_once() -> None:
    """The socket drops while the server executes a step; the client reconnects and resends the same
    request id, and the server answers from its record instead of stepping twice."""
    calls: list[str] = []
    holder: dict[str, Client] = {}

    async def dropping(request: ExperienceRequest) -> dict[str, Any]:
        calls.append(request.action)
        if request.action == "drop" and calls.count("drop") == 1:
            ws = holder["env"]._transport._ws  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
            await ws.close()
        return world(request)

    model = FunctionExperienceModel(dropping, initial_state="s")
    async with running(model) as server, Client(server.url, token=TOKEN_A) as env:
        holder["env"] = env
        await env.reset(task=task("once", 4))
        result = await env.step("drop")
        assert result.observation == "once|0|drop"
        assert calls == ["drop"]
        assert (await env.state()).step_count == 1
        assert len(env.history) == 1 and env.history[0].id == result.info["transition_id"]
        assert (await env.step("next")).observation == "once|1|next"


async def test_http_retry_with_the_same_request_id_is_answered_not_repeated() -> None:
    async with running() as server, httpx.AsyncClient(base_url=server.url, headers=AUTH_A) as http:
        sid = (await http.post("/sessions")).json()["session_id"]
        await http.post(f"/sessions/{sid}/reset", json={"task": "t", "request_id": "r0"})
        first = (await http.post(f"/sessions/{sid}/step", json={"action": "a", "request_id": "r1"})).json()
        again = (await http.post(f"/sessions/{sid}/step", json={"action": "a", "request_id": "r1"})).json()
        assert first == again
        assert (await http.get(f"/sessions/{sid}/state")).json()["step_count"] == 1
        other = (await http.post(f"/sessions/{sid}/step", json={"action": "a", "request_id": "r2"})).json()
        assert other["metadata"]["transition_id"] != first["metadata"]["transition_id"]


async def test_tokens_share_nothing_between_clients() -> None:
    async with (
        running() as server,
        Client(server.url, token=TOKEN_A) as a,
        Client(server.url, token=TOKEN_B) as b,
    ):
        await a.reset(task=task("mine", 3))
        await b.reset(task=task("yours", 3))
        assert (await a.step("x")).observation == "mine|0|x"
        assert (await b.step("y")).observation == "yours|0|y"
        assert a.session_id != b.session_id


async def test_sync_needs_a_fresh_client() -> None:
    async with running() as server, Client(server.url, token=TOKEN_A) as env:
        await env.reset(task=task("x"))
        with pytest.raises(RuntimeError, match="fresh client"):
            env.sync()
