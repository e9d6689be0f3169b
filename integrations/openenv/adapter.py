""":class:`OpenEnvEnv`: an OpenEnv environment object (in-process ``Environment`` or ``EnvClient``) as an Env.

Duck-typed, so this module does not import ``openenv``:

- an in-process ``openenv.core.Environment`` has sync ``reset(seed=..., **kw)`` / ``step(action)`` returning
  an ``Observation`` model (with ``reward``, ``done``, ``metadata``); the calls run in a worker thread,
  as OpenEnv's own server runs them;
- an ``openenv.core.EnvClient`` (a typed client of a running server) has awaitable ``reset(**kw)`` /
  ``step(action)`` returning a ``StepResult`` (``observation``, ``reward``, ``done``, ``metadata``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from dreamgym_sdk.types import Task

from ._base import ActionFromText, ObservationToText, OpenEnvBase, render_observation

__all__ = ["OpenEnvEnv"]


def _fields(observation: Any) -> dict[str, Any]:
    if hasattr(observation, "model_dump"):
        dumped: dict[str, Any] = observation.model_dump(exclude={"reward", "done"})
        return dumped
    return dict(observation or {})


def _payload(result: Any) -> dict[str, Any]:
    """OpenEnv's wire payload from an ``Observation`` (in-process) or a client ``StepResult``."""
    if hasattr(result, "observation"):  # a client's StepResult
        return {
            "observation": _fields(result.observation),
            "reward": result.reward,
            "done": bool(result.done),
            "metadata": dict(result.metadata or getattr(result.observation, "metadata", None) or {}),
        }
    return {  # an Observation
        "observation": _fields(result),
        "reward": getattr(result, "reward", None),
        "done": bool(getattr(result, "done", False)),
        "metadata": dict(getattr(result, "metadata", None) or {}),
    }


class OpenEnvEnv(OpenEnvBase):
    """A real :class:`~dreamgym_sdk.Env` over an OpenEnv environment object.

    ```python
    env = OpenEnvEnv(EchoEnvironment(), action_from_text=lambda text: EchoAction(message=text), max_steps=10)
    obs, info = await env.reset(seed=0)
    ```

    For a server you have no client class for, :class:`OpenEnvWebSocketEnv` speaks the protocol itself.

    Args:
        env: an in-process OpenEnv ``Environment`` or a connected ``EnvClient``.
        action_from_text: text → the env's ``Action`` model (required: only you know the action class).
        observation_to_text: observation fields → text; by default the one text field, else
            ``name: value`` lines.
        max_steps: truncate episodes after this many steps.
        environment: the environment name recorded on tasks given as strings.
        task_to_reset: extra reset arguments that select the task.
        close_env: call the object's ``close()`` when this env closes.
    """

    def __init__(
        self,
        env: Any,
        *,
        action_from_text: ActionFromText,
        observation_to_text: ObservationToText = render_observation,
        max_steps: int | None = None,
        environment: str = "openenv",
        task_to_reset: Callable[[Task], dict[str, Any]] | None = None,
        close_env: bool = True,
    ) -> None:
        super().__init__(
            observation_to_text=observation_to_text,
            max_steps=max_steps,
            environment=environment,
            task_to_reset=task_to_reset,
        )
        self.env = env
        self.action_from_text = action_from_text
        self.close_env = close_env
        self._in_process = hasattr(env, "step_async") and hasattr(env, "state")

    async def _reset_payload(self, data: dict[str, Any]) -> Mapping[str, Any]:
        return _payload(await self._call(self.env.reset, **data))

    async def _step_payload(self, action: str) -> Mapping[str, Any]:
        return _payload(await self._call(self.env.step, self.action_from_text(action)))

    async def _close(self) -> None:
        close = getattr(self.env, "close", None)
        if self.close_env and callable(close):
            await self._call(close)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._in_process:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result
