"""Reward sources apart from the transition model, and an observation-only world model (the
Qwen-AgentWorld format) behind a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dreamgym_sdk import DreamEnv, Task
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience import (
    ExperienceOutput,
    ExperienceRequest,
    JudgeReward,
    ModelReward,
    ObservationWorldModel,
    RewardVerdict,
    RuleReward,
    parse_predicted_observation,
    with_reward,
)
from dreamgym_sdk.providers import get_provider
from dreamgym_sdk.testing import ScriptedExperienceModel
from dreamgym_sdk.testing.openai_server import OpenAIServer

TASK = Task(instruction="leave the room", initial_state="A locked room. There is a door.")
OPEN, CLOSE = "<predicted_observation>", "</predicted_observation>"


def agentworld(body: dict[str, Any]) -> str:
    """Answers as Qwen-AgentWorld does: reasoning (its think tag left unclosed once), then the tag."""
    action = body["messages"][1]["content"].split("**Action:**\n")[1].strip()
    if action == "open door":
        return f"<think>The door was unlocked earlier.</think>\n{OPEN}You are outside. You win!{CLOSE}"
    return f"<think>{action} changes nothing here.\n{OPEN}A locked room. There is a door.{CLOSE}"


def won_when_said(request: ExperienceRequest, output: ExperienceOutput) -> RewardVerdict:
    won = "you win" in output.next_state.lower()
    return RewardVerdict(reward=float(won), done=won, success=won)


@pytest.mark.parametrize(
    ("text", "reasoning", "observation"),
    [
        ("<think>a</think> b <predicted_observation>\nobs\n</predicted_observation>", "a b", "obs"),
        (
            "<think>thinking, never closed <predicted_observation>obs</predicted_observation>",
            "thinking, never closed",
            "obs",
        ),
        ("plain <predicted_observation>cut off", "plain", "cut off"),
        (
            f"{OPEN}draft{CLOSE} {OPEN}final{CLOSE}",
            f"{OPEN}draft{CLOSE}",
            "final",
        ),
    ],
)
def test_predicted_observations_are_read_robustly(text: str, reasoning: str, observation: str) -> None:
    assert parse_predicted_observation(text) == (reasoning, observation)


@pytest.mark.parametrize("text", ["no tags at all", "<predicted_observation>  </predicted_observation>"])
def test_an_answer_without_an_observation_raises_keeping_the_text(text: str) -> None:
    with pytest.raises(ModelOutputError) as raised:
        parse_predicted_observation(text)
    assert raised.value.raw_text == text


async def test_observation_model_with_a_rule_runs_a_full_episode() -> None:
    async with (
        OpenAIServer(responder=agentworld) as server,
        get_provider("openai/agentworld", api_base=server.base_url, api_key="k") as provider,
    ):
        model = with_reward(ObservationWorldModel(provider), RuleReward(won_when_said))
        async with DreamEnv(model, max_steps=5) as env:
            await env.reset(task=TASK, seed=1)
            steps = [await env.step(a) for a in ("look", "open door")]
            episode = env.episode
    assert [s.reward for s in steps] == [0.0, 1.0] and steps[-1].terminated and steps[-1].info["success"]
    assert episode is not None and episode.done
    assert [t.provenance.reward_source for t in episode.transitions] == ["rule", "rule"]
    assert episode.transitions[0].reasoning == "look changes nothing here."
    second = server.requests[1].body
    assert second is not None
    prompt = second["messages"][1]["content"]
    assert prompt.startswith("### Turn 2\n**Task Instruction:**\nleave the room")
    assert "Turn 1: action 'look' gave" in prompt  # the history reaches the world model


async def test_observation_model_needs_an_initial_state() -> None:
    async with (
        OpenAIServer(responder=agentworld) as server,
        get_provider("openai/agentworld", api_base=server.base_url, api_key="k") as provider,
    ):
        with pytest.raises(ModelOutputError, match="initial_state"):
            await ObservationWorldModel(provider).initial_state(Task(instruction="leave"))


async def test_judge_decides_caches_and_meters_apart() -> None:
    def judge(body: dict[str, Any]) -> str:
        won = "You win" in body["messages"][1]["content"]
        return json.dumps({"reasoning": "per rubric", "reward": int(won), "done": won, "success": won})

    simulator = ScriptedExperienceModel(
        [
            ExperienceOutput(next_state="Still locked.", reward=1.0, done=True, success=True),
            ExperienceOutput(next_state="Still locked.", reward=1.0, done=True, success=True),
            ExperienceOutput(next_state="Outside. You win", reward=0.0, done=False),
        ]
    )
    verdicts = []
    async with (
        OpenAIServer(responder=judge) as server,
        get_provider("openai/judge", api_base=server.base_url, api_key="k") as provider,
    ):
        source = JudgeReward(provider, rubric="Reward 1 when the player is outside.")
        model = with_reward(simulator, source)
        for action in ("look", "look", "open door"):
            request = ExperienceRequest(task=TASK, state=TASK.initial_state or "", action=action)
            prediction = await model.predict(request)
            output = prediction.output
            verdicts.append((output.reward, output.done, prediction.provenance.reward_source))
    # the simulator's own (wrong) rewards are overruled; the repeated step is judged once
    assert verdicts == [(0.0, False, "judge"), (0.0, False, "judge"), (1.0, True, "judge")]
    assert source.calls == 2 and len(server.requests) == 2
    assert source.usage.prompt_tokens > 0
    body = server.requests[0].body
    assert body is not None and "Reward 1 when the player is outside." in body["messages"][0]["content"]


async def test_the_model_source_keeps_the_models_answer() -> None:
    output = ExperienceOutput(next_state="x", reward=0.5, done=True, success=False)
    verdict = await ModelReward().score(ExperienceRequest(task=TASK, state="s", action="a"), output)
    assert verdict == RewardVerdict(0.5, True, False)
