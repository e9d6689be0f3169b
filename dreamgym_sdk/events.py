"""Typed events published on the :class:`~dreamgym_sdk.EventBus`.

Events are frozen, keyword-only dataclasses named as past-tense facts. Each carries a literal ``kind``
that discriminates it when serialised, so any event round-trips through JSON with
:func:`event_to_json` / :func:`event_from_json`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from dreamgym_sdk.types import Episode, Source, Task, Transition

__all__ = [
    "AnyEvent",
    "EpisodeCompleted",
    "EpisodeStarted",
    "Event",
    "PolicyUpdated",
    "TaskAccepted",
    "TaskProposed",
    "TaskRejected",
    "TransitionRecorded",
    "event_from_json",
    "event_to_json",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base class of every event. Subscribe to ``Event`` to receive all of them."""

    time: float = field(default_factory=time.time)
    """Unix time the event was created."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeStarted(Event):
    """An episode was reset and is about to take its first step."""

    episode_id: str
    task: Task
    source: Source
    initial_state: str
    group: int = 0
    kind: Literal["episode_started"] = "episode_started"


@dataclass(frozen=True, kw_only=True, slots=True)
class TransitionRecorded(Event):
    """A step completed and its transition was appended to its episode."""

    transition: Transition
    kind: Literal["transition_recorded"] = "transition_recorded"


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeCompleted(Event):
    """An episode ended (terminated or truncated); carries the whole episode."""

    episode: Episode
    kind: Literal["episode_completed"] = "episode_completed"


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskProposed(Event):
    """The curriculum proposed a new task (not yet filtered)."""

    task: Task
    reason: str = ""
    """Why it was proposed (e.g. the parent's reward variance)."""
    kind: Literal["task_proposed"] = "task_proposed"


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskAccepted(Event):
    """A proposed task passed the curriculum's filters and joined the task pool."""

    task: Task
    kind: Literal["task_accepted"] = "task_accepted"


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskRejected(Event):
    """A proposed task failed a filter."""

    task: Task
    reason: str
    kind: Literal["task_rejected"] = "task_rejected"


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyUpdated(Event):
    """A trainer backend finished a policy update."""

    step: int
    """Number of updates done so far, this one included."""
    metrics: dict[str, float] = field(default_factory=dict[str, float])
    checkpoint: str | None = None
    """Path of the checkpoint written by this update, if any."""
    kind: Literal["policy_updated"] = "policy_updated"


AnyEvent = Annotated[
    EpisodeStarted
    | TransitionRecorded
    | EpisodeCompleted
    | TaskProposed
    | TaskAccepted
    | TaskRejected
    | PolicyUpdated,
    Field(discriminator="kind"),
]
"""The union of every concrete event type, discriminated by ``kind``."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)


def event_to_json(event: Event) -> str:
    """Serialise an event to a JSON string."""
    return _ADAPTER.dump_json(event).decode()


def event_from_json(data: str | bytes) -> Event:
    """Parse a JSON string produced by :func:`event_to_json` back into its event."""
    event: Event = _ADAPTER.validate_json(data)
    return event
