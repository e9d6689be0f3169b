"""Ray rollouts: two local workers, every episode on the driver's bus exactly once, bounded in flight."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, ExperienceRequest, Task
from dreamgym_sdk.integrations.openenv import OpenEnvWebSocketEnv
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy, ScriptedPolicy
from dreamgym_sdk.types import Episode

ray = pytest.importorskip("ray")
# The workers unpickle the env factories and policies below: ship this module's code by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.usefixtures("ray_local")


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    if req.action == "open fridge":
        return {"reasoning": "", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    return {
        "reasoning": "",
        "next_state": "apple in fridge" if won else req.state,
        "reward": float(won),
        "done": won,
        "success": won,
    }


def dream_env(group: int) -> DreamEnv:
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state="fridge: closed"), max_steps=5)


POLICY = ScriptedPolicy(["open fridge", "put apple in fridge"])
TASKS = [Task(instruction=f"store apple {i}") for i in range(3)]


async def test_two_workers_deliver_every_episode_exactly_once() -> None:
    received: list[Episode] = []
    config = RayConfig(num_workers=2, episodes_per_worker=4, worker_num_cpus=1)
    async with EventBus() as bus:
        bus.subscribe(EpisodeCompleted, callback=lambda event: received.append(event.episode))
        async with RayRollouts(dream_env, policy=POLICY, bus=bus, config=config) as rollouts:
            assert rollouts.num_workers == 2
            episodes = await rollouts.run(TASKS, group_size=4, seed=10)
            await bus.join()
            assert rollouts.stats.submitted == rollouts.stats.published == 12
    assert len(episodes) == 12
    assert Counter(e.id for e in received) == Counter(e.id for e in episodes)
    assert all(count == 1 for count in Counter(e.id for e in received).values())
    assert [(e.task.id, e.group, e.seed) for e in episodes] == [
        (task.id, g, 10 + 4 * t + g) for t, task in enumerate(TASKS) for g in range(4)
    ]
    assert all(e.success and e.total_reward == 1.0 and len(e) == 2 for e in episodes)


async def test_a_slow_learner_bounds_the_episodes_in_flight() -> None:
    config = RayConfig(num_workers=2, episodes_per_worker=4, max_in_flight=3)
    in_flight: list[int] = []
    episodes: list[Episode] = []
    async with EventBus() as bus:
        learner = bus.subscribe(EpisodeCompleted, maxsize=1)  # blocks the publisher when one is waiting
        async with RayRollouts(dream_env, policy=POLICY, bus=bus, config=config) as rollouts:

            async def learn() -> None:
                async for _event in learner:
                    in_flight.append(rollouts.stats.in_flight)
                    await anyio.lowlevel.checkpoint()
                    if len(in_flight) == 12:
                        return

            async with anyio.create_task_group() as tg:
                tg.start_soon(learn)
                episodes = await rollouts.run(TASKS, group_size=4)
    assert len(episodes) == 12 and len(in_flight) == 12
    assert max(in_flight) <= 3


async def test_policy_factory_runs_in_the_workers_and_errors_propagate() -> None:
    def make_policy() -> FunctionPolicy:
        return FunctionPolicy(
            lambda task, obs, history, info: "open fridge" if not history else "put apple in fridge"
        )

    async with RayRollouts(
        dream_env, policy_factory=make_policy, config=RayConfig(num_workers=1)
    ) as rollouts:
        episodes = await rollouts.run(TASKS[:1], group_size=2)
        assert [e.success for e in episodes] == [True, True]

    def broken(task: Task, obs: str, history: Any, info: Any) -> str:
        raise ValueError("the policy broke")

    async with RayRollouts(
        dream_env, policy=FunctionPolicy(broken), config=RayConfig(num_workers=1)
    ) as rollouts:
        with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="the policy broke")):  # as RolloutRunner
            await rollouts.run(TASKS[:1])


def test_exactly_one_of_policy_or_factory() -> None:
    with pytest.raises(ValueError, match="exactly one of policy"):
        RayRollouts(dream_env)
    with pytest.raises(ValueError, match="exactly one of env_factory"):
        RayRollouts(policy=POLICY)


async def _log_line(log: Path, line: str) -> None:
    async with await anyio.open_file(log, "a") as f:
        await f.write(line + "\n")


@asynccontextmanager
async def logged_dream_envs(log: Path) -> AsyncIterator[Callable[[int], DreamEnv]]:
    """A worker context owning a task group (to be left in the task that entered it) and one model."""
    async with anyio.create_task_group():
        await _log_line(log, f"enter {os.getpid()}")
        model = FunctionExperienceModel(kitchen, initial_state="fridge: closed")
        yield lambda group: DreamEnv(model, max_steps=5)
        await _log_line(log, f"exit {os.getpid()}")


async def test_env_context_is_entered_and_left_once_per_worker(tmp_path: Path) -> None:
    log = tmp_path / "contexts.log"
    context = functools.partial(logged_dream_envs, log)
    async with RayRollouts(env_context=context, policy=POLICY, config=RayConfig(num_workers=2)) as rollouts:
        episodes = await rollouts.run(TASKS, group_size=2)
        assert all(e.success for e in episodes) and len(episodes) == 6
    lines = log.read_text().split()
    entered = {pid for kind, pid in zip(lines[::2], lines[1::2], strict=True) if kind == "enter"}
    left = {pid for kind, pid in zip(lines[::2], lines[1::2], strict=True) if kind == "exit"}
    assert len(entered) == 2 and left == entered


def test_starting_without_ray_names_the_extra() -> None:
    code = (
        "import sys, anyio; sys.modules['ray'] = None\n"
        "from dreamgym_sdk.integrations.ray import RayRollouts\n"
        "from dreamgym_sdk.testing import ScriptedPolicy\n"
        "async def main():\n"
        "    async with RayRollouts(lambda g: None, policy=ScriptedPolicy(['a'])):\n"
        "        pass\n"
        "try:\n    anyio.run(main)\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dreamgym-sdk[ray]" in out


def _echo_server_module() -> Any:
    """The OpenEnv stand-in server of the OpenEnv integration's tests."""
    path = Path(__file__).resolve().parents[1] / "openenv" / "openenv_echo_server.py"
    spec = importlib.util.spec_from_file_location("openenv_echo_server_for_ray", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_workers_play_against_a_remote_env_server() -> None:
    echo = _echo_server_module()
    async with echo.echo_server() as (url, stats):  # served by this (the driver's) event loop

        def remote_env(group: int) -> OpenEnvWebSocketEnv:  # runs in the workers: a client session
            return OpenEnvWebSocketEnv(url, max_steps=3)

        policy = ScriptedPolicy(["hi", "bye"])
        async with RayRollouts(remote_env, policy=policy, config=RayConfig(num_workers=2)) as rollouts:
            episodes = await rollouts.run([Task(instruction="say bye", environment="openenv")], group_size=4)
    assert stats.sessions == 4
    assert all(e.terminated and e.source == "real" and len(e) == 2 for e in episodes)
