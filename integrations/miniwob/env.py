""":class:`MiniWoBEnv`: a MiniWoB++ web task in headless Chromium behind the async Env protocol."""

from __future__ import annotations

import os
import shutil
import time
from enum import StrEnum
from typing import Any

from dreamgym_sdk._imports import require
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.types import StepResult, Task

from ..gymnasium import GymnasiumToEnv
from .actions import ActionKind, InvalidActionError, parse_action
from .state import MiniWoBStateMapper

__all__ = [
    "ENVIRONMENT",
    "TASK_KEY",
    "InvalidActionMode",
    "MiniWoBEnv",
    "RewardMode",
    "find_chrome",
    "miniwob_task",
]

ENVIRONMENT = "miniwob"
"""The environment name of MiniWoB tasks and transitions."""
TASK_KEY = "miniwob_task"
"""The task metadata entry naming the MiniWoB task to play."""
_BROWSER_STARTS = 3
"""Tries to start an env's browser before its error is raised."""
_log = get_logger(__name__)

_KINDS = {
    ActionKind.CLICK: "CLICK_ELEMENT",
    ActionKind.TYPE_INTO: "FOCUS_ELEMENT_AND_TYPE_TEXT",
    ActionKind.TYPE: "TYPE_TEXT",
    ActionKind.PRESS: "PRESS_KEY",
    ActionKind.NOOP: "NONE",
}


class RewardMode(StrEnum):
    """How MiniWoB's reward becomes the step reward."""

    BINARY = "binary"
    """1 on the step that solves the task, else 0 (DreamGym's outcome reward)."""
    RAW = "raw"
    """MiniWoB's raw reward on the final step: +1 solved, -1 failed (or timed out)."""
    TIME_DISCOUNTED = "time_discounted"
    """MiniWoB's original reward: the raw reward scaled down by the time taken."""


class InvalidActionMode(StrEnum):
    """What a text action outside the action language does."""

    NOOP = "noop"
    """The step does nothing (time passes) and ``info["invalid_action"]`` says why: an invalid action
    leads to an unchanged state with reward 0, as DreamGym's experience model is taught."""
    RAISE = "raise"
    """``step`` raises :class:`~dreamgym_sdk.integrations.miniwob.InvalidActionError`."""


def find_chrome() -> tuple[str, str] | None:
    """The Chromium (or Chrome) binary and the chromedriver on ``PATH``, or ``None`` if either is missing.

    ``MINIWOB_CHROME_BINARY`` and ``MINIWOB_CHROMEDRIVER`` (both set) take precedence.
    """
    binary, driver = os.environ.get("MINIWOB_CHROME_BINARY"), os.environ.get("MINIWOB_CHROMEDRIVER")
    if binary and driver:
        return binary, driver
    binary = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None
    )
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def miniwob_task(name: str, *, instruction: str | None = None) -> Task:
    """A :class:`~dreamgym_sdk.Task` that makes :class:`MiniWoBEnv` play the MiniWoB task ``name``.

    Its id is stable (``miniwob-<name>``), so the rollouts of one task form one group across runs; its
    instruction defaults to the name (each episode's actual instruction is the page's utterance, the
    first line of the state).
    """
    return Task(
        id=f"miniwob-{name}",
        instruction=instruction or name,
        environment=ENVIRONMENT,
        metadata={TASK_KEY: name},
    )


class MiniWoBEnv(GymnasiumToEnv):
    """A MiniWoB++ task (``click-test-2``, ``enter-text``, ``login-user``, ...) as a real environment.

    ```python
    async with MiniWoBEnv("enter-text") as env:
        obs, info = await env.reset(seed=0)     # obs: the utterance and the page's elements
        await env.step('type [5] "Jerald"')
        result = await env.step("click [6]")
    ```

    The page runs in headless Chromium through Selenium (the ``miniwob`` package's own driver); the
    browser starts on the first ``reset`` and stops on :meth:`close`. ``reset(task=miniwob_task(name))``
    plays another task (the browser is restarted for it), so one env factory serves a whole task list.
    Observations are text states from :class:`MiniWoBStateMapper`; actions are text in the language of
    :data:`ACTION_HELP` (``click [12]``, ``type [5] "hello"``, ``press <Enter>``, ``noop``). The same
    seed gives the same task instance.

    ``info`` holds ``utterance``, ``fields`` (the task's key/value slots), MiniWoB's ``raw_reward``,
    ``env_reward`` and ``reason``, ``success`` and, after ``reset``, ``task``: the given task, or one whose
    instruction is the utterance (environment ``"miniwob"``, metadata ``miniwob_task`` and ``seed``).

    Chromium and chromedriver are found on ``PATH`` (``scripts/install-miniwob.sh`` installs Debian's);
    set ``MINIWOB_CHROME_BINARY`` and ``MINIWOB_CHROMEDRIVER`` to use others.

    Args:
        task_name: the MiniWoB task played when ``reset`` gets no task naming one, as in its file name
            (``"click-test-2"``).
        reward: how the step reward is computed, see :class:`RewardMode`.
        invalid_action: what an unparseable action does, see :class:`InvalidActionMode`.
        mapper: renders observations; defaults to ``MiniWoBStateMapper()``.
        max_steps: truncate episodes after this many steps (MiniWoB also ends tasks on its own timer).
        screenshots: record screenshots (slower; they stay in the gymnasium observation).
        make_kwargs: further arguments of MiniWoB's gymnasium environment (``wait_ms``, ``data_mode``).
    """

    def __init__(
        self,
        task_name: str | None = None,
        *,
        reward: RewardMode | str = RewardMode.BINARY,
        invalid_action: InvalidActionMode | str = InvalidActionMode.NOOP,
        mapper: MiniWoBStateMapper | None = None,
        max_steps: int | None = 30,
        screenshots: bool = False,
        make_kwargs: dict[str, Any] | None = None,
    ) -> None:
        require("miniwob", extra="miniwob", feature="MiniWoBEnv")
        chrome = find_chrome()
        if chrome is not None:  # keeps Selenium from looking for (downloading) a browser of its own
            os.environ.setdefault("MINIWOB_CHROME_BINARY", chrome[0])
            os.environ.setdefault("MINIWOB_CHROMEDRIVER", chrome[1])
        self.task_name = task_name
        self.reward_mode = RewardMode(reward)
        self.invalid_action = InvalidActionMode(invalid_action)
        self.mapper = mapper if mapper is not None else MiniWoBStateMapper()
        self.screenshots = screenshots
        self._invalid: str | None = None
        self._fields: list[tuple[str, str]] = []
        self._utterance = ""
        self._playing: str | None = None
        self._make_kwargs_miniwob = dict(make_kwargs or {})
        super().__init__(
            self._make_gym_env,
            observation_to_text=self._render,
            action_from_text=self._to_miniwob,
            max_steps=max_steps,
            environment=ENVIRONMENT,
        )

    @property
    def playing(self) -> str | None:
        """The MiniWoB task of the current (or last) episode."""
        return self._playing

    def _make_gym_env(self) -> Any:
        gymnasium = require("gymnasium", extra="miniwob", feature="MiniWoBEnv")
        require("miniwob", extra="miniwob", feature="MiniWoBEnv")  # importing it registers the tasks
        from selenium.common.exceptions import WebDriverException

        for attempt in range(_BROWSER_STARTS):
            try:
                return gymnasium.make(f"miniwob/{self._playing}-v1", **self._make_kwargs_miniwob)
            except WebDriverException as exc:  # chromedriver can exit at start on a loaded machine
                if attempt == _BROWSER_STARTS - 1:
                    raise
                _log.warning("browser failed to start; retrying", attempt=attempt + 1, error=str(exc)[:200])
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _reset_sync(
        self, task: Task | None, seed: int | None, options: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        self._guard.resetting()  # a failed reset leaves no playable episode
        name = (task.metadata.get(TASK_KEY) if task is not None else None) or self.task_name
        if not name:
            raise ValueError(
                "no MiniWoB task to play: pass MiniWoBEnv(task_name) or reset(task=miniwob_task(name))"
            )
        if name != self._playing and self._env is not None:  # another task: another page, a new browser
            env, self._env = self._env, None
            env.close()
        self._playing = str(name)
        options = {"record_screenshots": self.screenshots, **(options or {})}
        self._blur()
        text, info = super()._reset_sync(task, seed, options)
        info.pop("root_dom", None)
        info["utterance"] = self._utterance
        info["fields"] = dict(self._fields)
        if task is None:
            info["task"] = Task(
                instruction=self._utterance,
                environment=ENVIRONMENT,
                metadata={TASK_KEY: self._playing, "seed": seed},
            )
        return text, info

    def _step_sync(self, action: str) -> StepResult:
        self._invalid = None
        result = super()._step_sync(action)
        info = result.info
        info.pop("root_dom", None)
        raw = float(info.get("raw_reward") or 0.0)
        success = result.terminated and raw > 0
        info["success"] = success
        if self._invalid is not None:
            info["invalid_action"] = self._invalid
        if self.reward_mode is RewardMode.BINARY:
            reward = 1.0 if success else 0.0
        elif self.reward_mode is RewardMode.RAW:
            reward = raw if result.terminated else 0.0
        else:
            reward = result.reward
        observation = result.observation
        if result.terminated:  # MiniWoB shows an empty page once a task ends
            observation = f"[The task is over: {'success' if success else 'failure'}.]"
        return StepResult(observation, reward, result.terminated, result.truncated, info)

    def _blur(self) -> None:
        """Drop the focus the last episode left (MiniWoB keeps the page), so a seed means one start state."""
        env = self.gymnasium_env
        instance = getattr(env.unwrapped, "instance", None) if env is not None else None
        driver = getattr(instance, "driver", None)
        if driver is not None and not instance.died:  # pyright: ignore[reportOptionalMemberAccess]
            driver.execute_script("if (document.activeElement) { document.activeElement.blur(); }")

    def _render(self, observation: Any, info: Any) -> str:
        self._fields = [(str(k), str(v)) for k, v in observation.get("fields") or ()]
        self._utterance = " ".join(str(observation.get("utterance") or "").split())
        return self.mapper.state(observation)

    def _to_miniwob(self, text: str) -> Any:
        """The MiniWoB action dict for a text action (in the worker thread)."""
        try:
            parsed = parse_action(text)
        except InvalidActionError as exc:
            if self.invalid_action is InvalidActionMode.RAISE:
                raise
            self._invalid = str(exc)
            parsed = parse_action("noop")
        env = self._env
        assert env is not None  # actions are parsed by step(), after a reset
        unwrapped: Any = env.unwrapped
        fields: dict[str, Any] = {}
        if parsed.ref is not None:
            fields["ref"] = parsed.ref
        if parsed.text is not None:
            fields["text"] = parsed.text
        if parsed.key is not None:
            keys = list(unwrapped.action_space_config.allowed_keys)
            if parsed.key not in keys:
                message = f"unknown key {parsed.key!r}; keys look like <Enter>, <Tab>, a, C-a"
                if self.invalid_action is InvalidActionMode.RAISE:
                    raise InvalidActionError(message)
                self._invalid = message
                return unwrapped.create_action("NONE")
            fields["key"] = keys.index(parsed.key)
        return unwrapped.create_action(_KINDS[parsed.kind], **fields)
