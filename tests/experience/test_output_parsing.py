"""Parsing model output into the contract: unambiguous repairs, typed errors that keep the raw text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dreamgym_sdk import ModelOutputError
from dreamgym_sdk.experience import parse_experience_output
from dreamgym_sdk.experience._json import MAX_DEPTH, extract_json_object

GOOD = {"reasoning": "the door opens", "next_state": "outside", "reward": 1, "done": True, "success": True}
FAIL = {
    "reasoning": "no such element",
    "next_state": "Invalid action: no [99]",
    "reward": 0,
    "done": False,
    "success": False,
}


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


def j(**fields: Any) -> str:
    """A failure-step answer with ``fields`` replaced."""
    return json.dumps(
        {"reasoning": "x", "next_state": "s", "reward": 0, "done": False, "success": False, **fields}
    )


WIN = '"next_state": "outside", "reward": 1, "done": true, "success": true'
"""The tail of a successful answer, as raw JSON text."""


@pytest.mark.parametrize(
    ("text", "repairs"),
    [
        (dumps(GOOD), ()),
        ("Here:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nAnything else?", ("surrounding_text",)),
        (dumps(GOOD)[:-1] + ",}", ("trailing_comma",)),
        (repr(GOOD), ("python_literals", "single_quotes")),
        ('{reasoning: "y", next_state: "outside", reward: 1, done: true, success: true}', ("unquoted_keys",)),
        ('{"reasoning": "the door\nopens", ' + WIN + "}", ("control_characters",)),
        ('{"reasoning": "x", // comment\n ' + WIN + "}", ("comments",)),
        ('{"reasoning": "x", ' + WIN.replace("1", '"1.0"') + "}", ("numeric_string_reward",)),
        ('{"reasoning": "x", ' + WIN.replace("true", '"true"') + "}", ("string_booleans",)),
        ('{"reasoning": "x", ' + WIN.replace("true", "1") + "}", ("integer_booleans",)),
        ('{"reasoning": "x", ' + WIN.replace("1", "1.0000000001") + "}", ("reward_snapped",)),
        ('{"reasoning": ["a", "b"], ' + WIN + "}", ("reasoning_joined",)),
        ('{"reasoning": "x", ' + WIN, ("closed_truncated",)),
        ('{"reasoning": "x", ' + WIN + ",\n", ("closed_truncated",)),
    ],
)
def test_repairs(text: str, repairs: tuple[str, ...]) -> None:
    parsed = parse_experience_output(text)
    assert parsed.output.next_state == "outside"
    assert parsed.output.reward == 1.0 and parsed.output.done and parsed.output.success
    assert set(repairs) <= set(parsed.repairs), parsed.repairs


def test_valid_failure_step_and_extras() -> None:
    parsed = parse_experience_output(json.dumps({**FAIL, "valid_action": False}))
    assert parsed.output.reward == 0.0 and not parsed.output.done
    assert parsed.output.model_extra == {"valid_action": False}


def test_first_contract_object_wins_over_unrelated_objects() -> None:
    text = 'I considered {"note": 1} first.\n' + dumps(FAIL) + "\n" + dumps(GOOD)
    assert parse_experience_output(text).output.next_state == FAIL["next_state"]


def test_braces_in_prose_before_the_object() -> None:
    text = "The state {looks} fine { honestly.\n" + dumps(GOOD)
    assert parse_experience_output(text).output.success


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I cannot help with that.", "no JSON object"),
        ('{"reasoning": "x", "next_state": "outsi', "inside a string"),
        ('{"reasoning": "x", ' + WIN[:-2], "word"),
        ('{"reasoning": "x", "next_state": "outside", "reward": 1', "inside a number"),
        ('{"reasoning": "x", "next_state": "outside", "reward":', "value was expected"),
        ('{"reasoning": "x", "next_state": "outside"}', "missing field(s): 'reward', 'done', 'success'"),
        ('{"next_state": "outside", "reward": 0, "done": false, "success": false}', "'reasoning'"),
        (j(next_state=""), "non-empty"),
        (j(next_state=["a"]), "non-empty"),
        (j(reasoning=3), "'reasoning'"),
        (j(reward=1.5, done=True, success=True), "within [0, 1]"),
        (j(reward=-0.2), "within"),
        (j(reward=True, done=True, success=True), "number"),
        (j(reward=None), "number"),
        (j(reward="high"), "number"),
        (j(reward=float("nan")), "finite"),
        (j(reward=0.5), "0 or 1"),
        (j(reward=1), "inconsistent"),
        (j(reward=1, done=True), "inconsistent"),
        (j(done=True, success=True), "inconsistent"),
        (j(success=True), "'done' is false"),
        (j(done="maybe"), "'done'"),
        (j(done=2), "'done'"),
        (j()[:-1] + ', "reward": 1}', "duplicate"),
        ('{"output": ' + json.dumps(GOOD) + "}", "missing field"),
        ('{"reasoning": "x" "next_state": "s", "reward": 0, "done": false, "success": false}', "expected"),
        ("{" * 5_000, "no usable JSON"),
        ('{"a": ' * (MAX_DEPTH + 10), "no usable JSON"),
    ],
)
def test_errors_keep_the_raw_text(text: str, message: str) -> None:
    with pytest.raises(ModelOutputError) as info:
        parse_experience_output(text)
    assert info.value.raw_text == text
    assert message in str(info.value)


def test_truncated_finish_reason_is_named() -> None:
    with pytest.raises(ModelOutputError, match="cut off at max_tokens"):
        parse_experience_output('{"reasoning": "a long thought that', finish_reason="length")


def test_truncation_repair_needs_every_field() -> None:
    cut = '{"reasoning": "x", "next_state": "outside", "reward": 0, "done": true,'
    with pytest.raises(ModelOutputError, match="'success'"):
        parse_experience_output(cut, finish_reason="length")


def test_complete_object_despite_length_is_accepted() -> None:
    text = dumps(FAIL) + "\nAnd another thought that went on and on"
    assert parse_experience_output(text, finish_reason="length").output.next_state == FAIL["next_state"]


def test_without_reasoning_reasoning_is_empty_and_not_required() -> None:
    no_reasoning = {k: v for k, v in GOOD.items() if k != "reasoning"}
    assert parse_experience_output(dumps(no_reasoning), use_reasoning=False).output.reasoning == ""
    assert parse_experience_output(dumps(GOOD), use_reasoning=False).output.reasoning == ""


def test_dense_rewards() -> None:
    half = {**FAIL, "reward": 0.5}
    assert parse_experience_output(dumps(half), reward_mode="dense").output.reward == 0.5
    early = {**FAIL, "reward": 1.0}
    assert parse_experience_output(dumps(early), reward_mode="dense").output.reward == 1.0
    with pytest.raises(ModelOutputError, match="within"):
        parse_experience_output(dumps({**FAIL, "reward": 3}), reward_mode="dense")
    with pytest.raises(ModelOutputError, match="'done' is false"):
        parse_experience_output(dumps({**FAIL, "reward": 0.2, "success": True}), reward_mode="dense")


def test_reward_tolerance_is_tiny_and_configurable() -> None:
    near = {**GOOD, "reward": 0.9999}
    with pytest.raises(ModelOutputError):
        parse_experience_output(dumps(near))
    assert parse_experience_output(dumps(near), reward_tolerance=1e-3).output.reward == 1.0


def test_unicode_is_preserved_and_lone_surrogates_replaced() -> None:
    text = j(next_state="café ☕", reasoning="@").replace("@", "\\ud83d\\ude00 ok \\ud800")
    parsed = parse_experience_output(text)
    assert parsed.output.reasoning == "😀 ok \ufffd"
    assert parsed.output.next_state == "café ☕"
    parsed.output.model_dump_json()  # encodable


def test_extract_prefers_keys_and_skips_inner_braces() -> None:
    text = '{"wrapper": {"next_state": "inner"}} {"next_state": "outer"}'
    assert extract_json_object(text, prefer_keys=("next_state",)).value == {"next_state": "outer"}
    assert extract_json_object(text).value == {"wrapper": {"next_state": "inner"}}


def test_sections_round_trip_and_either_format_is_read() -> None:
    from dreamgym_sdk.experience.parsing import render_answer

    for answer_format in ("json", "sections"):
        text = render_answer('says "hi"\nthen', "a: 1\nb: {x}", 0.5, True, False, answer_format=answer_format)
        for asked in ("json", "sections"):
            parsed = parse_experience_output(text, answer_format=asked, reward_mode="dense")
            assert parsed.output.next_state == "a: 1\nb: {x}" and parsed.output.reward == 0.5
            assert parsed.output.done and not parsed.output.success
            assert parsed.output.reasoning == (
                'says "hi" then' if answer_format == "sections" else 'says "hi"\nthen'
            )
            assert bool(parsed.repairs) == (asked != answer_format), "the other format is a recorded repair"


def test_unusable_sections_keep_the_raw_text_and_say_what_is_missing() -> None:
    for text in ("Reasoning: r\nNext state:\ns", "Next state:\ns\nReward: 0 | Done: maybe | Success: false"):
        with pytest.raises(ModelOutputError) as info:
            parse_experience_output(
                text, answer_format="sections", reward_mode="dense", finish_reason="length"
            )
        assert info.value.raw_text == text
    with pytest.raises(ModelOutputError, match=r"Reward: <number>.*cut off"):
        parse_experience_output("Next state:\ns", answer_format="sections", finish_reason="length")
