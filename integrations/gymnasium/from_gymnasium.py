""":class:`GymnasiumToEnv`: any gymnasium environment with text observations as a real async Env."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.env import EpisodeGuard, TaskLike
from dreamgym_sdk.types import StepResult, Task

require("gymnasium", extra="gymnasium", feature="dreamgym_sdk.integrations.gymnasium")
import gymnasium  # noqa: E402

__all__ = ["GymnasiumToEnv", "ObservationToText"]

ObservationToText = Callable[[Any, Mapping[str, Any]], str]
"""``fn(observation, info) -> text``: renders a gymnasium observation as the text state."""
ActionFromText = Callable[[str], Any]
"""``fn(text) -> action``: parses a text action into the gymnasium env's action."""
TaskToOptions = Callable[[Task], dict[str, Any]]
"""``fn(task) -> options``: reset options that make the gymnasium env play ``task``."""


def _text_observation(observation: Any, info: Mapping[str, Any]) -> str:
    if isinstance(observation, str):
        return observation
    raise TypeError(
        f"the observation is a {type(observation).__name__}, not text: "
        "pass GymnasiumToEnv(..., observation_to_text=fn) to render it"
    )


class GymnasiumToEnv:
    """A gymnasium environment behind the async :class:`~dreamgym_sdk.Env` protocol.

    ```python
    env = GymnasiumToEnv(lambda: gymnasium.make("MyTextGame-v0"), environment="my-game")
    obs, info = await env.reset(task="win the game", seed=0)
    result = await env.step("go north")
    ```

    Gymnasium calls block, so each one runs in a worker thread (one at a time per env); the episode's
    bookkeeping happens in that same thread call, so a cancelled ``step`` either happened completely
    (and counts) or not at all. The gymnasium env is made on the first ``reset`` (off the event loop,
    since making one may start a browser or load a game) and closed by :meth:`close`.

    ``info`` is the gymnasium env's ``info`` plus ``success`` (its ``success`` or ``is_success`` entry,
    else ``False``) and, after ``reset``, ``task`` (the :class:`~dreamgym_sdk.Task`), which
    :class:`~dreamgym_sdk.RecordingEnv` records episodes under.

    Args:
        env: a gymnasium env, a zero-argument factory, or a registered env id for ``gymnasium.make``.
        observation_to_text: renders observations; by default they must already be ``str``.
        action_from_text: parses actions; by default the text is passed as is (a ``Text`` action space).
        task_to_options: reset options that select the task (for envs that take their task as an option).
        max_steps: truncate episodes after this many steps (on top of the env's own limits).
        environment: the environment name recorded on tasks given as strings.
        make_kwargs: keyword arguments for ``gymnasium.make`` when ``env`` is an id.
    """

    def __init__(
        self,
        env: gymnasium.Env[Any, Any] | Callable[[], gymnasium.Env[Any, Any]] | str,
        *,
        observation_to_text: ObservationToText = _text_observation,
        action_from_text: ActionFromText | None = None,
        task_to_options: TaskToOptions | None = None,
        max_steps: int | None = None,
        environment: str = "gymnasium",
        make_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self._source = env
        self._make_kwargs = dict(make_kwargs or {})
        self.observation_to_text = observation_to_text
        self.action_from_text = action_from_text
        self.task_to_options = task_to_options
        self.max_steps = max_steps
        self.environment = environment
        self._env: gymnasium.Env[Any, Any] | None = env if isinstance(env, gymnasium.Env) else None
        self._lock = anyio.Lock()
        self._guard = EpisodeGuard()

    @property
    def gymnasium_env(self) -> gymnasium.Env[Any, Any] | None:
        """The wrapped gymnasium env (``None`` until the first reset when given as a factory or an id)."""
        return self._env

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset the gymnasium env with ``seed`` and ``options`` and return ``(text, info)``.

        Raises:
            EnvClosedError: the env is closed.
        """
        self._guard.check_open()
        the_task = Task(instruction=task, environment=self.environment) if isinstance(task, str) else task
        opts = dict(options or {})
        if the_task is not None and self.task_to_options is not None:
            opts.update(self.task_to_options(the_task))
        async with self._lock:
            return await anyio.to_thread.run_sync(self._reset_sync, the_task, seed, opts or None)

    async def step(self, action: str) -> StepResult:
        """Send ``action`` (parsed by ``action_from_text``) to the gymnasium env.

        Raises:
            EnvClosedError: the env is closed.
            ResetNeededError: no episode was started, or the last ``reset`` failed.
            EpisodeFinishedError: the episode already terminated or was truncated.
        """
        async with self._lock:
            self._guard.check_step()
            return await anyio.to_thread.run_sync(self._step_sync, action)

    async def close(self) -> None:
        """Close the gymnasium env (waiting for a running call); idempotent."""
        if not self._guard.close():
            return
        with anyio.CancelScope(shield=True):
            async with self._lock:
                env, self._env = self._env, None
                if env is not None:
                    await anyio.to_thread.run_sync(env.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- in the worker thread ------------------------------------------------------------------------
    def _reset_sync(
        self, task: Task | None, seed: int | None, options: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        self._guard.resetting()  # a failed reset leaves no playable episode
        env = self._ensure_env()
        observation, raw_info = env.reset(seed=seed, options=options)
        info = dict(raw_info)
        text = self.observation_to_text(observation, info)
        info["success"] = _success(info)
        if task is not None:
            info["task"] = task
        self._guard.started()
        return text, info

    def _step_sync(self, action: str) -> StepResult:
        env = self._env
        assert env is not None
        parsed = self.action_from_text(action) if self.action_from_text is not None else action
        observation, reward, terminated, truncated, raw_info = env.step(parsed)
        info = dict(raw_info)
        terminated = bool(terminated)
        truncated = self._guard.stepped(terminated or bool(truncated), self.max_steps) or bool(truncated)
        info["success"] = _success(info)
        text = self.observation_to_text(observation, info)
        return StepResult(text, float(reward), terminated, truncated, info)

    def _ensure_env(self) -> gymnasium.Env[Any, Any]:
        if self._env is None:
            source = self._source
            if isinstance(source, str):
                self._env = gymnasium.make(source, **self._make_kwargs)
            elif isinstance(source, gymnasium.Env):
                self._env = source
            else:
                self._env = source()
        return self._env


def _success(info: Mapping[str, Any]) -> bool:
    for key in ("success", "is_success"):
        if key in info:
            return bool(info[key])
    return False
