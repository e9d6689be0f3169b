"""DreamEnv and RecordingEnv: the Env contract, events, truncation, typed errors."""

from __future__ import annotations

from typing import Any

import pytest

from dreamgym_sdk import (
    DreamEnv,
    DreamGymError,
    EnvClosedError,
    EpisodeCompleted,
    EpisodeFinishedError,
    EpisodeStarted,
    Event,
    EventBus,
    ExperienceRequest,
    RecordingEnv,
    ResetNeededError,
    Source,
    StepResult,
    Task,
    TransitionRecorded,
)
from dreamgym_sdk.errors import ConformanceError
from dreamgym_sdk.experience import derive_seed
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedExperienceModel, check_env


def door_world(req: ExperienceRequest) -> dict[str, Any]:
    won = req.action == "open door"
    return {
        "reasoning": f"step {req.step}: {req.action}",
        "next_state": "outside" if won else f"{req.state}.",
        "reward": 1.0 if won else 0.0,
        "done": won,
        "success": won,
    }


def model() -> FunctionExperienceModel:
    return FunctionExperienceModel(door_world, initial_state="a locked room")


async def test_reset_and_step_follow_gymnasium_semantics() -> None:
    async with DreamEnv(model()) as env:
        obs, info = await env.reset(task="get out")
        assert obs == "a locked room"
        assert info["source"] == "synthetic"
        result = await env.step("look")
        assert isinstance(result, StepResult)
        obs, reward, terminated, truncated, info = result
        assert (obs, reward, terminated, truncated) == ("a locked room.", 0.0, False, False)
        for key in ("reasoning", "success", "source", "retrieved_ids"):
            assert key in info
        assert info["reasoning"] == "step 0: look"
        final = await env.step("open door")
        assert (final.observation, final.reward, final.terminated, final.done) == ("outside", 1.0, True, True)
        assert final.info["success"] is True
        episode = env.episode
        assert episode is not None
        assert [t.step for t in episode.transitions] == [0, 1]
        assert episode.success and episode.total_reward == 1.0 and episode.ended_at is not None


async def test_typed_errors_for_misuse() -> None:
    env = DreamEnv(model())
    with pytest.raises(ResetNeededError):
        await env.step("look")
    await env.reset(task="get out")
    await env.step("open door")
    with pytest.raises(EpisodeFinishedError, match="already ended"):
        await env.step("look")  # never a silent reset
    await env.close()
    with pytest.raises(EnvClosedError):
        await env.reset(task="again")
    with pytest.raises(EnvClosedError):
        await env.step("look")


async def test_truncates_at_max_steps() -> None:
    env = DreamEnv(model(), max_steps=3)
    await env.reset(task="get out")
    results = [await env.step("look") for _ in range(3)]
    assert [(r.terminated, r.truncated) for r in results] == [(False, False), (False, False), (False, True)]
    with pytest.raises(EpisodeFinishedError):
        await env.step("look")


async def test_model_sees_history_state_and_seeds() -> None:
    scripted = ScriptedExperienceModel(
        [{"next_state": f"s{i + 1}", "reward": 0.0, "done": i == 2} for i in range(3)], initial_state="s0"
    )
    env = DreamEnv(scripted)
    await env.reset(task=Task(id="t1", instruction="walk"), seed=10)
    for action in ("a", "b", "c"):
        await env.step(action)
    reqs = scripted.requests
    assert [r.state for r in reqs] == ["s0", "s1", "s2"]
    assert [len(r.history) for r in reqs] == [0, 1, 2]
    # one seed per step, unrelated to the next episode's (seeded 11) steps
    assert [r.seed for r in reqs] == [derive_seed(10, "step", i) for i in range(3)]
    assert not {r.seed for r in reqs} & {derive_seed(11, "step", i) for i in range(3)}
    assert reqs[2].history[1].action == "b"
    assert scripted.unconsumed == []


async def test_initial_state_comes_from_options_then_task_then_model() -> None:
    env = DreamEnv(model())
    assert (await env.reset(task="x", options={"initial_state": "opt"}))[0] == "opt"
    assert (await env.reset(task=Task(instruction="x", initial_state="task")))[0] == "task"
    assert (await env.reset(task="x"))[0] == "a locked room"


async def test_publishes_episode_events_in_order() -> None:
    bus = EventBus()
    sub = bus.subscribe(Event)
    env = DreamEnv(model(), bus=bus)
    await env.reset(task="get out")
    await env.step("look")
    await env.step("open door")
    bus.close()
    events = [e async for e in sub]
    assert [type(e) for e in events] == [
        EpisodeStarted,
        TransitionRecorded,
        TransitionRecorded,
        EpisodeCompleted,
    ]
    completed = events[-1]
    assert isinstance(completed, EpisodeCompleted)
    assert len(completed.episode.transitions) == 2
    assert completed.episode == env.episode.model_copy(update={"ended_at": completed.episode.ended_at})  # pyright: ignore[reportOptionalMemberAccess]


async def test_dream_env_passes_check_env() -> None:
    await check_env(DreamEnv(model(), max_steps=5), task="get out", actions=["look", "open door"])


class SilentlyResettingEnv(DreamEnv):
    """A broken env: stepping a finished episode starts a new one instead of raising."""

    async def step(self, action: str) -> StepResult:
        episode = self.episode
        if episode is not None and episode.done:
            await self.reset(task=episode.task)
        return await super().step(action)


async def test_check_env_catches_a_silent_reset() -> None:
    with pytest.raises(ConformanceError, match="no silent reset"):
        await check_env(SilentlyResettingEnv(model()), task="get out", actions=["open door"])


class CountdownEnv:
    """A tiny real environment: reach zero by saying "down"."""

    def __init__(self) -> None:
        self.n: int | None = None
        self.closed = False

    async def reset(
        self, *, task: Any = None, seed: int | None = None, options: Any = None
    ) -> tuple[str, dict[str, Any]]:
        self.n = 2
        return "n=2", {"objective": "count down to zero"}

    async def step(self, action: str) -> StepResult:
        assert self.n is not None
        self.n -= action == "down"
        done = self.n == 0
        return StepResult(f"n={self.n}", float(done), done, False, {"success": done})

    async def close(self) -> None:
        self.closed = True


async def test_recording_env_records_a_real_env() -> None:
    bus = EventBus()
    sub = bus.subscribe(TransitionRecorded)
    inner = CountdownEnv()
    async with RecordingEnv(inner, bus=bus, environment="countdown") as env:
        obs, info = await env.reset()
        assert obs == "n=2" and info["source"] == "real"
        await env.step("down")
        result = await env.step("down")
        assert result.terminated and result.info["success"] and result.info["source"] == "real"
        episode = env.episode
        assert episode is not None and episode.task.instruction == "count down to zero"
        assert [t.source for t in episode.transitions] == [Source.REAL, Source.REAL]
        assert [(t.state, t.next_state) for t in episode.transitions] == [("n=2", "n=1"), ("n=1", "n=0")]
    assert inner.closed
    bus.close()
    assert len([e async for e in sub]) == 2


async def test_reset_needs_a_task() -> None:
    with pytest.raises(ValueError, match="needs a task"):
        await DreamEnv(model()).reset()


def test_errors_share_one_root() -> None:
    for error in (ResetNeededError, EpisodeFinishedError, EnvClosedError, ConformanceError):
        assert issubclass(error, DreamGymError)


def test_the_episode_guard_orders_reset_step_and_close() -> None:
    from dreamgym_sdk.env import EpisodeGuard

    guard = EpisodeGuard()
    with pytest.raises(ResetNeededError):
        guard.check_step()
    guard.resetting()
    with pytest.raises(ResetNeededError):  # a reset that never completed starts nothing
        guard.check_step()
    guard.started()
    guard.check_step()
    assert guard.stepped(False, max_steps=2) is False and guard.running
    assert guard.stepped(False, max_steps=2) is True and not guard.running  # the limit truncates
    with pytest.raises(EpisodeFinishedError, match="after 2 step"):
        guard.check_step()
    guard.started()
    assert guard.stepped(True, max_steps=None) is False and not guard.running  # the env ended it
    guard.started(done=True)  # ended by the reset itself
    with pytest.raises(EpisodeFinishedError):
        guard.check_step()
    assert guard.close() is True and guard.close() is False
    with pytest.raises(EnvClosedError):
        guard.check_open()
