"""DreamEnv's ``admissible``: the commands of the state the policy now sees, in ``info``."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dreamgym_sdk import (
    DreamEnv,
    Event,
    EventBus,
    ExperienceOutput,
    ExperienceRequest,
    Prediction,
    Task,
    TransitionRecorded,
)
from dreamgym_sdk.testing import ScriptedExperienceModel, check_env


def commands_of(state: str) -> tuple[str, ...]:
    """A toy grammar: one command per word of the state."""
    return tuple(f"touch {word}" for word in state.split())


def scripted(*states: str, done_at: int | None = None) -> ScriptedExperienceModel:
    return ScriptedExperienceModel(
        [
            {"next_state": state, "reward": 0.0, "done": i == done_at, "success": False}
            for i, state in enumerate(states)
        ],
        initial_state="red door",
    )


class InfoModel:
    """Answers every step with ``next_state`` and the given prediction info."""

    def __init__(self, info: dict[str, object]) -> None:
        self.info = info

    async def initial_state(self, task: Task) -> str:
        return "start"

    async def predict(self, request: ExperienceRequest) -> Prediction:
        return Prediction(ExperienceOutput(next_state="next", reward=0.0, done=False), info=dict(self.info))


async def test_reset_and_step_list_the_commands_of_the_state_now_seen() -> None:
    seen: list[str] = []

    def admissible(state: str) -> Sequence[str]:
        seen.append(state)
        return commands_of(state)

    env = DreamEnv(scripted("blue door", "open sky", done_at=1), admissible=admissible)
    _, info = await env.reset(task="leave")
    assert info["admissible_commands"] == ["touch red", "touch door"]
    result = await env.step("touch red")
    assert result.observation == "blue door"
    assert result.info["admissible_commands"] == ["touch blue", "touch door"]
    final = await env.step("touch door")
    assert final.terminated and final.info["admissible_commands"] == ["touch open", "touch sky"]
    assert seen == ["red door", "blue door", "open sky"]


async def test_the_initial_state_from_options_is_the_one_listed() -> None:
    env = DreamEnv(scripted(), admissible=commands_of)
    _, info = await env.reset(task="leave", options={"initial_state": "green gate"})
    assert info["admissible_commands"] == ["touch green", "touch gate"]


async def test_without_admissible_info_has_no_commands() -> None:
    env = DreamEnv(scripted("blue door"))
    _, info = await env.reset(task="leave")
    result = await env.step("look")
    assert "admissible_commands" not in info and "admissible_commands" not in result.info


async def test_the_model_s_own_commands_win() -> None:
    calls: list[str] = []

    def admissible(state: str) -> list[str]:
        calls.append(state)
        return ["derived"]

    env = DreamEnv(InfoModel({"admissible_commands": ["from the model"]}), admissible=admissible)
    _, info = await env.reset(task="leave")
    assert info["admissible_commands"] == ["derived"]
    result = await env.step("look")
    assert result.info["admissible_commands"] == ["from the model"]
    assert calls == ["start"]  # not called for a state whose commands the model gave


async def test_other_prediction_info_keeps_the_derived_commands() -> None:
    env = DreamEnv(InfoModel({"note": "hi"}), admissible=commands_of)
    await env.reset(task="leave")
    result = await env.step("look")
    assert result.info["note"] == "hi" and result.info["admissible_commands"] == ["touch next"]


async def test_an_error_in_admissible_leaves_no_trace() -> None:
    def admissible(state: str) -> list[str]:
        if state == "bad":
            raise ValueError("no grammar for this state")
        return [state]

    bus = EventBus()
    sub = bus.subscribe(Event)
    env = DreamEnv(scripted("bad", "fine"), bus=bus, admissible=admissible)
    await env.reset(task="leave")
    with pytest.raises(ValueError, match="no grammar"):
        await env.step("look")
    assert env.history == ()
    result = await env.step("look")
    assert result.info["admissible_commands"] == ["fine"] and result.info["step"] == 0
    bus.close()
    recorded = [e for e in [e async for e in sub] if isinstance(e, TransitionRecorded)]
    assert [e.transition.next_state for e in recorded] == ["fine"]


async def test_passes_check_env_with_admissible() -> None:
    states = ["a", "b", "c"] * 4
    await check_env(
        DreamEnv(scripted(*states), max_steps=3, admissible=commands_of),
        task="leave",
        actions=["look"],
        fresh_env=DreamEnv(scripted(*states), admissible=commands_of),
    )
