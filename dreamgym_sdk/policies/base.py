"""The policy protocol: the agent that chooses actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from dreamgym_sdk.types import Task, Transition

__all__ = ["Policy", "admissible_actions"]


@runtime_checkable
class Policy(Protocol):
    """Chooses the next action from the task, the current observation and the episode so far.

    Implementations may be LLMs behind a provider, local Hugging Face models, scripts or humans; the
    rollout runner only needs this one coroutine.
    """

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """Return the next action.

        Args:
            task: the task being attempted.
            observation: the current (abstract text) state.
            history: the transitions of this episode so far, oldest first.
            info: the last ``info`` dict from ``reset``/``step`` (e.g. admissible actions).
        """
        ...


def admissible_actions(info: Mapping[str, Any]) -> list[str]:
    """The admissible actions an environment lists in ``info`` (``admissible_commands`` or
    ``admissible_actions``), or an empty list (also when the value is not a list of actions)."""
    value: object = info.get("admissible_commands") or info.get("admissible_actions") or []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return []
    return [str(a) for a in cast(Sequence[object], value)]
