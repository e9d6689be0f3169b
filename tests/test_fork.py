"""Forking: a GRPO group started from one stored state, in process and over the env server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dreamgym_sdk import DreamEnv, Episode, RolloutRunner, Task, Transition, fork_task
from dreamgym_sdk.experience import ExperienceRequest
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionPolicy

TASK = Task(instruction="reach the third room", initial_state="room 0")


def _world(seen: list[ExperienceRequest]) -> Callable[[ExperienceRequest], dict[str, object]]:
    def step(request: ExperienceRequest) -> dict[str, object]:
        seen.append(request)
        room = int(request.state.split()[-1]) + (request.action == "forward")
        won = room == 3
        return {"next_state": f"room {room}", "reward": float(won), "done": won, "success": won}

    return step


async def _stored_episode() -> list[Transition]:
    async with DreamEnv(FunctionExperienceModel(_world([]))) as env:
        await env.reset(task=TASK)
        for _ in range(2):
            await env.step("forward")
        assert env.episode is not None
        return list(env.episode.transitions)


def _policy() -> FunctionPolicy:
    return FunctionPolicy(lambda task, observation, history, info: "forward")


def _assert_forked(
    episodes: list[Episode], fork: Task, stored: list[Transition], seen: list[ExperienceRequest]
) -> None:
    assert len(episodes) == 4 and all(e.initial_state == "room 2" for e in episodes)
    assert all(e.task.id == fork.id for e in episodes)  # one group
    first_steps = [r for r in seen if r.state == "room 2"]
    assert len(first_steps) == 4
    assert all([t.id for t in r.history] == [t.id for t in stored] for r in first_steps)  # the past is shown
    assert all(
        len(e.transitions) == 1 and e.transitions[0].step == 0 for e in episodes
    )  # ...but not replayed


async def test_a_group_starts_from_one_stored_state() -> None:
    stored = await _stored_episode()
    fork = fork_task(TASK, stored)
    assert (fork.initial_state, fork.parent_id, fork_task(TASK, stored).id) == ("room 2", TASK.id, fork.id)
    seen: list[ExperienceRequest] = []
    model = FunctionExperienceModel(_world(seen))
    runner = RolloutRunner(lambda _: DreamEnv(model), _policy())
    _assert_forked(await runner.run([fork], group_size=4, seed=0), fork, stored, seen)


async def test_a_group_starts_from_one_stored_state_over_the_server() -> None:
    pytest.importorskip("fastapi")
    from dreamgym_sdk.serve import Client, EnvServer, ServeConfig

    stored = await _stored_episode()
    fork = fork_task(TASK, stored)
    seen: list[ExperienceRequest] = []
    config = ServeConfig(port=0, tokens=("fork-token-0123456789",))
    async with EnvServer.for_model(FunctionExperienceModel(_world(seen)), config) as server:
        runner = RolloutRunner(lambda _: Client(server.url, token="fork-token-0123456789"), _policy())
        _assert_forked(await runner.run([fork], group_size=4, seed=0), fork, stored, seen)


def test_a_fork_needs_a_stored_step() -> None:
    with pytest.raises(ValueError, match="at least one stored step"):
        fork_task(TASK, [])
