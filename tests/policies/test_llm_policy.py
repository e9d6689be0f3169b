"""LLMPolicy: the prompt, action parsing and snapping to admissible actions."""

from __future__ import annotations

import pytest

from dreamgym_sdk import Task, Transition
from dreamgym_sdk.policies.llm import LLMPolicy, LLMPolicyConfig, parse_action
from dreamgym_sdk.providers import ChatRequest
from dreamgym_sdk.testing import FunctionProvider

TASK = Task(instruction="eat the apple")


def step(i: int) -> Transition:
    return Transition(
        task_id=TASK.id,
        episode_id="e",
        step=i,
        state=f"s{i}",
        action=f"a{i}",
        next_state=f"s{i + 1}",
        reward=0.0,
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("take apple", "take apple"),
        ("Action: take apple.", "take apple"),
        ("```\ntake apple\n```", "take apple"),
        ('"take apple"\nBecause it is there.', "take apple"),
        ("- eat apple", "eat apple"),
        ("", ""),
    ],
)
def test_parse_action(reply: str, expected: str) -> None:
    assert parse_action(reply) == expected


def test_snaps_to_admissible() -> None:
    admissible = ["take apple", "eat apple", "go north"]
    assert parse_action("Eat Apple", admissible) == "eat apple"
    assert parse_action("I will eat the apple", admissible) == "eat apple"
    assert parse_action("north", admissible) == "go north"


async def test_prompt_has_task_history_state_and_admissible_actions() -> None:
    seen: list[ChatRequest] = []

    def answer(request: ChatRequest) -> str:
        seen.append(request)
        return "Action: eat the apple"

    policy = LLMPolicy(FunctionProvider(answer), LLMPolicyConfig(history_window=2, temperature=0.0))
    history = [step(i) for i in range(5)]
    action = await policy.act(
        TASK, "kitchen: apple on table", history, {"admissible_commands": ["eat apple", "look"]}
    )
    assert action == "eat apple"
    prompt = seen[0].messages[-1].content
    assert "Task: eat the apple" in prompt
    assert "(3 earlier step(s) omitted)" in prompt
    assert "Step 3: action: a3 -> s4" in prompt and "Step 1:" not in prompt
    assert "kitchen: apple on table" in prompt
    assert "Admissible actions: eat apple; look" in prompt
    assert seen[0].temperature == 0.0


async def test_without_admissible_actions_the_reply_is_used_as_is() -> None:
    policy = LLMPolicy(
        FunctionProvider(lambda r: "open the fridge"), LLMPolicyConfig(snap_to_admissible=False)
    )
    assert await policy.act(TASK, "s", [], {"admissible_commands": ["look"]}) == "open the fridge"
