"""What the OpenEnv adapters share: text ↔ OpenEnv payloads and the Env protocol's episode rules.

OpenEnv answers ``reset`` and ``step`` with ``{"observation": {...}, "reward": float | None, "done": bool,
"metadata": {...}}`` (its ``serialize_observation``); an episode has no separate truncation, so
``done`` is ``terminated`` and ``max_steps`` adds truncation on our side.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import anyio

from dreamgym_sdk.env import EpisodeGuard, TaskLike
from dreamgym_sdk.errors import DreamGymError
from dreamgym_sdk.types import StepResult, Task

__all__ = ["ActionFromText", "ObservationToText", "OpenEnvBase", "OpenEnvError", "render_observation"]

ObservationToText = Callable[[Mapping[str, Any]], str]
"""``fn(observation_fields) -> text``: renders an OpenEnv observation's fields as the text state."""
ActionFromText = Callable[[str], Any]
"""``fn(text) -> action``: the OpenEnv action for a text action (a dict, or an ``Action`` model)."""

_RESERVED = ("metadata", "reward", "done")


class OpenEnvError(DreamGymError):
    """Raised when an OpenEnv environment or server reports an error (its message and code are kept)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(f"{message} ({code})" if code else message)


def render_observation(fields: Mapping[str, Any]) -> str:
    """The default text of an observation: its one text field, or ``name: value`` lines of all fields."""
    shown = {k: v for k, v in fields.items() if k not in _RESERVED}
    texts = [v for v in shown.values() if isinstance(v, str)]
    if len(shown) == 1 and len(texts) == 1:
        return texts[0]
    return "\n".join(
        f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)}"
        for k, v in shown.items()
    )


class OpenEnvBase(ABC):
    """Episode bookkeeping shared by the OpenEnv adapters; subclasses talk to the environment."""

    def __init__(
        self,
        *,
        observation_to_text: ObservationToText,
        max_steps: int | None,
        environment: str,
        task_to_reset: Callable[[Task], dict[str, Any]] | None,
    ) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.observation_to_text = observation_to_text
        self.max_steps = max_steps
        self.environment = environment
        self.task_to_reset = task_to_reset
        self._lock = anyio.Lock()
        self._guard = EpisodeGuard()

    @abstractmethod
    async def _reset_payload(self, data: dict[str, Any]) -> Mapping[str, Any]: ...

    @abstractmethod
    async def _step_payload(self, action: str) -> Mapping[str, Any]: ...

    @abstractmethod
    async def _close(self) -> None: ...

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset the OpenEnv environment (``seed`` and ``options`` are its reset arguments).

        Raises:
            EnvClosedError: the env is closed.
            OpenEnvError: the environment reported an error.
        """
        self._guard.check_open()
        the_task = Task(instruction=task, environment=self.environment) if isinstance(task, str) else task
        data: dict[str, Any] = dict(options or {})
        if seed is not None:
            data["seed"] = seed
        if the_task is not None and self.task_to_reset is not None:
            data.update(self.task_to_reset(the_task))
        async with self._lock:
            self._guard.resetting()
            payload = await self._reset_payload(data)
            self._guard.started(done=bool(payload.get("done", False)))
        text, info = self._convert(payload)
        if the_task is not None:
            info["task"] = the_task
        return text, info

    async def step(self, action: str) -> StepResult:
        """Send ``action`` to the environment.

        Raises:
            EnvClosedError: the env is closed.
            ResetNeededError: no episode is running (never reset, or its connection was lost).
            EpisodeFinishedError: the episode already ended.
            OpenEnvError: the environment reported an error.
        """
        async with self._lock:
            self._guard.check_step()
            payload = await self._step_payload(action)
            terminated = bool(payload.get("done", False))
            truncated = self._guard.stepped(terminated, self.max_steps)
        text, info = self._convert(payload)
        reward = payload.get("reward")
        return StepResult(text, float(reward or 0.0), terminated, truncated, info)

    async def close(self) -> None:
        """End the session; idempotent."""
        if not self._guard.close():
            return
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _convert(self, payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        fields: Mapping[str, Any] = payload.get("observation") or {}
        metadata = dict(payload.get("metadata") or fields.get("metadata") or {})
        info: dict[str, Any] = {
            "observation": dict(fields),
            "metadata": metadata,
            "success": bool(metadata.get("success", False)),
        }
        return self.observation_to_text(fields), info
