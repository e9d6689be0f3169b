"""Task-variation hook: structured candidates, robust parsing, a documented selection rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dreamgym_sdk import ModelOutputError, Task
from dreamgym_sdk.experience import TaskCandidate, TaskGenerationConfig, TaskVariationGenerator
from dreamgym_sdk.testing import FunctionProvider, ScriptedProvider

PARENT = Task(
    id="p1", instruction="buy red running shoes under $50", environment="shop", initial_state="[1] textbox"
)


def candidate(instruction: str, **fields: Any) -> dict[str, Any]:
    return {
        "instruction": instruction,
        "rationale": "same skill",
        "difficulty": "similar",
        "feasible": True,
        "feasibility_check": "the shop sells shoes",
        **fields,
    }


def reply(*candidates: Any) -> str:
    return json.dumps({"candidates": list(candidates)})


async def test_propose_parses_structured_candidates() -> None:
    provider = ScriptedProvider(
        [
            reply(
                candidate("buy blue running shoes under $40"),
                candidate("buy a red jacket under $80", difficulty="harder", feasible="false"),
            )
        ]
    )
    generator = TaskVariationGenerator(provider)
    found = await generator.propose(PARENT, k=2, seed=3)
    assert [c.instruction for c in found] == [
        "buy blue running shoes under $40",
        "buy a red jacket under $80",
    ]
    assert found[1].difficulty == "harder" and found[1].feasible is False
    chat = provider.requests[0]
    assert chat.seed == 3 and chat.response_schema is not None and chat.schema_name == "task_variations"
    assert "Propose 2 variations" in chat.messages[1].content and "2 variations" in chat.messages[0].content
    assert PARENT.instruction in chat.messages[1].content


async def test_malformed_duplicate_and_restated_candidates_are_dropped() -> None:
    text = (
        "```json\n"
        + reply(
            candidate("Buy RED running shoes, under $50!"),  # the parent again
            candidate("buy green shoes"),
            candidate("buy  green shoes"),  # duplicate
            {"rationale": "no instruction"},
            candidate("x", difficulty="impossible"),
            candidate(""),
            "just a string",
            candidate("buy socks", feasible="perhaps"),
            candidate("buy a hat"),
            candidate("buy a scarf"),
        )
        + "\n```"
    )
    found = await TaskVariationGenerator(ScriptedProvider([text])).propose(PARENT, k=2)
    assert [c.instruction for c in found] == ["buy green shoes", "buy a hat"]


async def test_retries_then_typed_error() -> None:
    provider = ScriptedProvider(["I cannot", reply(candidate(PARENT.instruction)), "{'candidates': 'none'}"])
    with pytest.raises(ModelOutputError) as info:
        await TaskVariationGenerator(provider).propose(PARENT)
    assert info.value.attempts == 3 and info.value.raw_text == "{'candidates': 'none'}"
    recovering = ScriptedProvider(["nothing useful", reply(candidate("buy sandals"))])
    assert [c.instruction for c in await TaskVariationGenerator(recovering).propose(PARENT)] == [
        "buy sandals"
    ]


async def test_single_object_answer_is_accepted() -> None:
    provider = ScriptedProvider([json.dumps(candidate("buy boots"))])
    assert (await TaskVariationGenerator(provider).propose(PARENT, k=1))[0].instruction == "buy boots"


def test_select_rule() -> None:
    generator = TaskVariationGenerator(FunctionProvider(lambda _: ""))
    easy = TaskCandidate(instruction="buy any shoes", difficulty="easier")
    hard = TaskCandidate(instruction="buy red trail shoes size 44 under $30", difficulty="harder")
    same = TaskCandidate(instruction="buy blue sandals under $40", difficulty="similar")
    infeasible = TaskCandidate(instruction="buy a car", difficulty="similar", feasible=False)
    restated = TaskCandidate(instruction="buy red running shoes under $50 please", difficulty="similar")
    assert generator.select([easy, hard, infeasible, restated, same], parent=PARENT) == same
    assert generator.select([easy, hard], parent=PARENT) == hard
    assert generator.select([easy], parent=PARENT) == easy
    assert generator.select([infeasible, restated], parent=PARENT) is None
    assert generator.select([]) is None
    prefer_easy = TaskVariationGenerator(
        FunctionProvider(lambda _: ""), config=TaskGenerationConfig(difficulty_preference=("easier",))
    )
    assert prefer_easy.select([hard, same, easy]) == easy
    assert prefer_easy.select([hard, same]) is None


def test_to_task_links_the_parent() -> None:
    task = TaskCandidate(instruction="buy blue shoes", rationale="r", difficulty="harder").to_task(
        PARENT, round=2
    )
    assert task.parent_id == "p1" and task.environment == "shop" and task.initial_state == "[1] textbox"
    assert task.id != PARENT.id
    assert task.metadata["round"] == 2 and task.metadata["variation"]["difficulty"] == "harder"
    fresh = TaskCandidate(instruction="x").to_task(PARENT, inherit_initial_state=False)
    assert fresh.initial_state is None


async def test_vary_end_to_end() -> None:
    provider = ScriptedProvider(
        [reply(candidate("buy a car", feasible=False), candidate("buy blue shoes under $45"))],
        model="test/gen",
    )
    task = await TaskVariationGenerator(provider).vary(PARENT, k=2)
    assert task is not None and task.instruction == "buy blue shoes under $45" and task.parent_id == "p1"
    assert task.metadata["generator"] == "test/gen" and task.metadata["prompt_version"] == "task-v1"
    nothing = ScriptedProvider([reply(candidate("buy a car", feasible=False))])
    assert await TaskVariationGenerator(nothing).vary(PARENT) is None


async def test_examples_and_guidance_reach_the_prompt() -> None:
    provider = ScriptedProvider([reply(candidate("buy a bag"))])
    other = Task(instruction="buy a green hat", environment="shop")
    await TaskVariationGenerator(provider).propose(PARENT, examples=[other], guidance="make it harder")
    user = provider.requests[0].messages[1].content
    assert "buy a green hat" in user and "make it harder" in user and "[1] textbox" in user


async def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k"):
        await TaskVariationGenerator(ScriptedProvider([])).propose(PARENT, k=0)
