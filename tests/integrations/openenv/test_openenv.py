"""The OpenEnv integration: a wire-protocol server session and in-process OpenEnv objects as real Envs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from openenv_echo_server import EchoAction, EchoEnvironment, echo_server

from dreamgym_sdk import EnvClosedError, EpisodeFinishedError, ResetNeededError, RolloutRunner, Task
from dreamgym_sdk.integrations.openenv import (
    OpenEnvEnv,
    OpenEnvError,
    OpenEnvWebSocketEnv,
    render_observation,
    text_field_action,
)
from dreamgym_sdk.testing import ScriptedPolicy, check_env

READY = "echoed_message: Echo environment ready!\nmessage_length: 0"


async def test_a_server_session_passes_check_env() -> None:
    async with echo_server() as (url, stats):
        await check_env(OpenEnvWebSocketEnv(url, max_steps=3), actions=("hi", "there"), max_steps=5)
        assert stats.sessions == 1


async def test_episode_over_the_wire() -> None:
    async with echo_server() as (url, _app), OpenEnvWebSocketEnv(url, max_steps=10) as env:
        obs, info = await env.reset(task="say bye", seed=3)
        assert obs == READY and info["task"].instruction == "say bye"
        result = await env.step("hello")
        assert result.observation == "echoed_message: hello\nmessage_length: 5"
        assert result.reward == pytest.approx(0.5) and not result.done
        assert result.info["metadata"] == {"original_message": "hello", "step": 1}
        assert (await env.state())["step_count"] == 1
        result = await env.step("bye")
        assert result.terminated and not result.truncated
        with pytest.raises(EpisodeFinishedError):
            await env.step("again")
        await env.reset()  # the same session serves the next episode
        assert (await env.state())["step_count"] == 0
    with pytest.raises(EnvClosedError):
        await env.reset()


async def test_server_errors_are_translated_and_keep_the_session() -> None:
    async with echo_server() as (url, _app):
        env = OpenEnvWebSocketEnv(url, action_from_text=lambda text: {"text": text})
        await env.reset()
        with pytest.raises(OpenEnvError, match="VALIDATION_ERROR"):
            await env.step("hello")
        env.action_from_text = lambda text: {"message": text}
        assert (await env.step("ok")).observation.startswith("echoed_message: ok")
        await env.close()


async def test_capacity_errors_end_the_session_and_a_later_reset_reconnects() -> None:
    async with echo_server() as (url, stats):
        stats.max_sessions = 1
        first, second = OpenEnvWebSocketEnv(url), OpenEnvWebSocketEnv(url)
        await first.reset()
        with pytest.raises(OpenEnvError, match="CAPACITY_REACHED"):
            await second.reset()
        with pytest.raises(ResetNeededError):
            await second.step("hi")
        await first.close()
        assert (await second.reset())[0] == READY
        assert (await second.step("hi")).observation.startswith("echoed_message: hi")
        await second.close()


async def test_a_cancelled_request_drops_the_session() -> None:
    async with echo_server() as (url, stats):
        env = OpenEnvWebSocketEnv(url)
        await env.reset()
        async with anyio.create_task_group() as tg:
            tg.start_soon(env.step, "hang")  # the server never answers this one
            await stats.hanging.wait()
            tg.cancel_scope.cancel()
        with pytest.raises(ResetNeededError):
            await env.step("next")
        await env.reset()  # a new session
        assert stats.sessions == 2 and not (await env.step("fine")).done
        await env.close()


async def test_rollouts_against_the_server() -> None:
    async with echo_server() as (url, _app):
        runner = RolloutRunner(lambda group: OpenEnvWebSocketEnv(url), ScriptedPolicy(["hi", "bye"]))
        episodes = await runner.run([Task(instruction="say bye", environment="openenv")], group_size=3)
    assert [len(e) for e in episodes] == [2, 2, 2] and all(e.terminated for e in episodes)
    assert all(e.source == "real" and e.total_reward == pytest.approx(0.5) for e in episodes)


async def test_in_process_environment_passes_check_env() -> None:
    def make() -> OpenEnvEnv:
        return OpenEnvEnv(
            EchoEnvironment(), action_from_text=lambda text: EchoAction(message=text), max_steps=4
        )

    await check_env(make(), actions=("a", "bye"), max_steps=5)
    echo = EchoEnvironment()
    env = OpenEnvEnv(echo, action_from_text=lambda text: EchoAction(message=text))
    assert (await env.reset())[0] == READY
    assert (await env.step("bye")).terminated
    await env.close()
    assert echo.closed


async def test_an_async_client_object() -> None:
    class StepResult:
        def __init__(self, observation: Any, reward: float | None, done: bool) -> None:
            self.observation, self.reward, self.done, self.metadata = observation, reward, done, None

    class FakeClient:
        """The shape of openenv.core.EnvClient: awaitable reset/step returning StepResult."""

        def __init__(self) -> None:
            self.inner = EchoEnvironment()

        async def reset(self, **kwargs: Any) -> StepResult:
            obs = self.inner.reset(**kwargs)
            return StepResult(obs, obs.reward, obs.done)

        async def step(self, action: EchoAction) -> StepResult:
            obs = self.inner.step(action)
            return StepResult(obs, obs.reward, obs.done)

    await check_env(
        OpenEnvEnv(FakeClient(), action_from_text=lambda t: EchoAction(message=t)),
        actions=("bye",),
        max_steps=2,
    )


def test_text_mappings() -> None:
    assert text_field_action(EchoAction.model_json_schema())("hi") == {"message": "hi"}
    with pytest.raises(ValueError, match="action_from_text"):
        text_field_action({"properties": {"x": {"type": "integer"}}, "required": ["x"]})
    assert render_observation({"text": "only", "metadata": {}}) == "only"
    assert render_observation({"a": 1, "b": "two"}) == "a: 1\nb: two"


OPENENV_PYTHON = os.environ.get("DREAMGYM_OPENENV_PYTHON")


@pytest.mark.skipif(
    not OPENENV_PYTHON,
    reason="set DREAMGYM_OPENENV_PYTHON to the Python of a venv with `pip install openenv` (CI does)",
)
async def test_against_openenvs_own_echo_server(tmp_path: Path) -> None:
    """OpenEnv's generated echo environment, served by OpenEnv's own server with uvicorn on 127.0.0.1."""
    assert OPENENV_PYTHON is not None
    python = Path(OPENENV_PYTHON)
    await anyio.run_process([str(python.parent / "openenv"), "init", "echo_env"], cwd=tmp_path)
    app_dir = tmp_path / "echo_env"
    command = [str(python), "-m", "uvicorn", "server.app:app", "--host", "127.0.0.1", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": f"{app_dir}{os.pathsep}{tmp_path}"}
    async with await anyio.open_process(command, cwd=app_dir, env=env) as server:
        assert server.stderr is not None
        url = None
        async for chunk in server.stderr:  # uvicorn logs the port it bound
            if match := re.search(rb"Uvicorn running on (http://127\.0\.0\.1:\d+)", chunk):
                url = match.group(1).decode()
                break
        assert url is not None
        try:
            await check_env(OpenEnvWebSocketEnv(url, max_steps=3), actions=("hi", "there"), max_steps=5)
            async with OpenEnvWebSocketEnv(url, max_steps=5) as env_:
                obs, _info = await env_.reset(seed=1)
                assert obs == "echoed_message: Echo Env environment ready!\nmessage_length: 0"
                result = await env_.step("hello")
                assert result.reward == pytest.approx(0.5) and result.info["metadata"]["step"] == 1
                assert (await env_.state())["step_count"] == 1
                env_.action_from_text = lambda text: {"text": text}
                with pytest.raises(OpenEnvError, match="VALIDATION_ERROR"):
                    await env_.step("x")
        finally:
            server.terminate()
