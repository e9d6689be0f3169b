"""The MiniWoB++ integration: the action language, the text state, and real tasks in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from dreamgym_sdk import RolloutRunner, Task
from dreamgym_sdk.testing import FunctionPolicy, check_env
from dreamgym_sdk.types import Transition

pytest.importorskip("gymnasium")

from dreamgym_sdk.integrations.miniwob import (
    ActionKind,
    InvalidActionError,
    MiniWoBEnv,
    MiniWoBStateMapper,
    ParsedAction,
    is_miniwob_available,
    miniwob_task,
    parse_action,
)

needs_browser = pytest.mark.skipif(
    not is_miniwob_available(),
    reason="needs the miniwob package, chromium and chromedriver: run scripts/install-miniwob.sh",
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("click [12]", ParsedAction(ActionKind.CLICK, ref=12)),
        ("  CLICK [ 3 ]. ", None),
        ('type [5] "hello \\"you\\""', ParsedAction(ActionKind.TYPE_INTO, ref=5, text='hello "you"')),
        ("type [5] 'it'", ParsedAction(ActionKind.TYPE_INTO, ref=5, text="it")),
        ('type "abc"', ParsedAction(ActionKind.TYPE, text="abc")),
        ("press <Enter>", ParsedAction(ActionKind.PRESS, key="<Enter>")),
        ("press enter", ParsedAction(ActionKind.PRESS, key="<Enter>")),
        ("press C-a", ParsedAction(ActionKind.PRESS, key="C-a")),
        ("press a", ParsedAction(ActionKind.PRESS, key="a")),
        ("noop", ParsedAction(ActionKind.NOOP)),
        ("wait", ParsedAction(ActionKind.NOOP)),
    ],
)
def test_the_action_language(text: str, parsed: ParsedAction | None) -> None:
    if parsed is None:  # a trailing period and odd spacing are not part of the language
        with pytest.raises(InvalidActionError):
            parse_action(text)
    else:
        assert parse_action(text) == parsed


@pytest.mark.parametrize("text", ["click 12", "type [5] hello", "open the door", "", 'type [x] "a"'])
def test_invalid_actions_name_the_language(text: str) -> None:
    with pytest.raises(InvalidActionError, match="click \\[id\\]"):
        parse_action(text)


def element(
    ref: int, parent: int, tag: str, text: str = "", value: str = "", focused: bool = False
) -> dict[str, Any]:
    return {
        "ref": ref,
        "parent": parent,
        "tag": tag,
        "text": text,
        "value": value,
        "id": "",
        "classes": "",
        "flags": np.array([focused, 0, 0, 0], dtype=np.int8),
    }


def test_the_state_lists_what_an_agent_can_see_and_act_on() -> None:
    elements = [
        element(1, 0, "body", focused=True),
        element(2, 1, "div"),
        element(3, 2, "label"),
        element(4, 3, "input_checkbox", value="True"),
        element(-1, 3, "t", "Apples"),
        element(5, 2, "p", "Some   text"),
        element(6, 2, "input_text", value="typed", focused=True),
        element(7, 2, "input_password", value="secret"),
        element(-2, 2, "t", "Loose text"),
        element(8, 2, "button", "Submit"),
        element(9, 2, "a", "More"),
    ]
    state = MiniWoBStateMapper().state({"utterance": "Pick apples.", "dom_elements": elements})
    assert state.split("\n") == [
        "Pick apples.",
        '[4] checkbox "Apples" checked',
        '[5] p "Some text"',
        '[6] textbox value="typed" focused',
        "[7] password",
        "Loose text",
        '[8] button "Submit"',
        '[9] link "More"',
    ]
    assert MiniWoBStateMapper(include_utterance=False).state({"utterance": "x", "dom_elements": []}) == ""


def solver(task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]) -> str:
    """Solves enter-text and click-test-2 from the text state alone."""
    utterance, *lines = observation.split("\n")

    def ref(pattern: str) -> str:
        return next(m.group(1) for line in lines if (m := re.match(rf"\[(\d+)\] {pattern}", line)))

    if m := re.match(r'Enter "(.+)" into', utterance):
        if not any('value="' in line for line in lines):
            return f'type [{ref("textbox")}] "{m.group(1)}"'
        return f"click [{ref('button')}]"
    target = utterance.removeprefix("Click button ").rstrip(".")
    button = 'button "' + target + '"'
    return f"click [{ref(button)}]"


@needs_browser
async def test_a_task_passes_check_env_headless() -> None:
    await check_env(MiniWoBEnv("click-test-2"), actions=("noop", "click [4]"), max_steps=5)


@needs_browser
async def test_tasks_solved_end_to_end_and_recorded_as_real_episodes() -> None:
    runner = RolloutRunner(lambda group: MiniWoBEnv(), FunctionPolicy(solver), max_steps=5)
    tasks = [miniwob_task("click-test-2"), miniwob_task("enter-text")]
    episodes = await runner.run(tasks, group_size=2, seed=7)
    assert [len(e) for e in episodes] == [1, 1, 2, 2]
    assert [e.task.id for e in episodes] == ["miniwob-click-test-2"] * 2 + ["miniwob-enter-text"] * 2
    for episode in episodes:
        assert episode.success and episode.total_reward == 1.0 and episode.source == "real"
        assert episode.transitions[-1].next_state == "[The task is over: success.]"
    assert episodes[2].transitions[0].action.startswith("type [")


@needs_browser
async def test_one_env_plays_several_tasks() -> None:
    async with MiniWoBEnv("click-test-2") as env:
        assert (await env.reset(seed=0))[0].startswith("Click button")
        obs, info = await env.reset(task=miniwob_task("enter-text"), seed=0)
        assert obs.startswith("Enter ") and env.playing == "enter-text" and info["fields"]["target"] in obs
        assert info["task"].id == "miniwob-enter-text"
        with pytest.raises(ValueError, match="no MiniWoB task"):
            await MiniWoBEnv().reset()


@needs_browser
async def test_invalid_actions_and_unknown_keys() -> None:
    async with MiniWoBEnv("click-test-2") as env:
        obs, info = await env.reset(seed=1)
        assert info["task"].instruction == info["utterance"] == "Click button ONE." == obs.split("\n")[0]
        result = await env.step("press the button")
        assert (
            result.observation == obs
            and result.reward == 0.0
            and "not an action" in result.info["invalid_action"]
        )
        result = await env.step("press <NoSuchKey>")
        assert "unknown key" in result.info["invalid_action"] and not result.done
        result = await env.step("click [5]")  # the wrong button
        assert result.terminated and not result.info["success"] and result.reward == 0.0
    async with MiniWoBEnv("click-test-2", invalid_action="raise", reward="raw") as env:
        await env.reset(seed=1)
        with pytest.raises(InvalidActionError):
            await env.step("press the button")
        assert (await env.step("click [5]")).reward == -1.0


def test_playing_without_miniwob_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['miniwob'] = None\n"
        "from dreamgym_sdk.integrations.miniwob import MiniWoBEnv, parse_action\n"
        "parse_action('click [1]')  # the language needs no browser\n"
        "try:\n    MiniWoBEnv('click-test-2')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dreamgym-sdk[miniwob]" in out


def test_a_browser_that_fails_to_start_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """chromedriver can exit at start on a loaded machine; the env tries again before giving up."""
    pytest.importorskip("miniwob")
    import gymnasium
    from selenium.common.exceptions import WebDriverException

    from dreamgym_sdk.integrations.miniwob import env as env_module

    monkeypatch.setattr(env_module.time, "sleep", lambda _: None)
    calls: list[str] = []

    def flaky_make(name: str, **kwargs: Any) -> str:
        calls.append(name)
        if len(calls) < 3:
            raise WebDriverException("Service /usr/bin/chromedriver unexpectedly exited. Status code was: 1")
        return "a gym env"

    monkeypatch.setattr(gymnasium, "make", flaky_make)
    env = MiniWoBEnv("click-test")
    env._playing = "click-test"  # pyright: ignore[reportPrivateUsage]
    assert env._make_gym_env() == "a gym env"  # pyright: ignore[reportPrivateUsage]
    assert calls == ["miniwob/click-test-v1"] * 3

    def broken(name: str, **kwargs: Any) -> str:
        calls.append(name)
        raise WebDriverException("Service /usr/bin/chromedriver unexpectedly exited. Status code was: 1")

    calls.clear()
    monkeypatch.setattr(gymnasium, "make", broken)
    with pytest.raises(WebDriverException):
        env._make_gym_env()  # pyright: ignore[reportPrivateUsage]
    assert len(calls) == 3  # then it gives up, with the browser's own error
