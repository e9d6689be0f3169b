"""The data the SDK passes around: tasks, transitions, episodes and step results.

Everything here is immutable and JSON-serialisable through pydantic, so it can travel on the event bus,
into the replay buffer and over the wire unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Episode",
    "Provenance",
    "Source",
    "StepResult",
    "Task",
    "Transition",
    "new_id",
]


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex


class Source(StrEnum):
    """Where a transition or an episode came from."""

    REAL = "real"
    """Observed in a real environment."""
    SYNTHETIC = "synthetic"
    """Produced by an experience model."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Task(_Frozen):
    """Something for the agent to do."""

    id: str = Field(default_factory=new_id)
    """Stable identifier; rollouts of the same task form one group."""
    instruction: str
    """The goal in natural language, as the agent sees it."""
    environment: str = "default"
    """The environment family the task belongs to (e.g. ``"textworld"``)."""
    initial_state: str | None = None
    """The abstract text state the episode starts in; ``None`` lets the experience model imagine one."""
    parent_id: str | None = None
    """For generated variations: the id of the task this one was derived from."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form, JSON-serialisable extras (game file, split, difficulty, ...)."""


class Provenance(_Frozen):
    """How a transition was produced: enough to audit, reproduce and cost it."""

    model: str | None = None
    """Model string of the experience model (or the real environment's name)."""
    prompt_version: str | None = None
    """Version of the prompt template used."""
    retrieved_ids: tuple[str, ...] = ()
    """Ids of the replay-buffer transitions retrieved to ground this one."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    """Wall time of the model call(s), seconds."""
    cost_usd: float | None = None
    """Cost of the model call(s) when known."""
    cached: bool = False
    """Whether the answer came from a response cache."""


class Transition(_Frozen):
    """One step of an episode: ``state --action--> next_state`` with its reward."""

    id: str = Field(default_factory=new_id)
    task_id: str
    episode_id: str
    step: int = Field(ge=0)
    """Index of the step within its episode, from 0."""
    environment: str = "default"
    state: str
    action: str
    reasoning: str = ""
    """The experience model's (or an annotator's) explanation of why the action leads to ``next_state``."""
    next_state: str
    reward: float
    terminated: bool = False
    truncated: bool = False
    success: bool = False
    source: Source = Source.SYNTHETIC
    provenance: Provenance = Field(default_factory=Provenance)

    @property
    def done(self) -> bool:
        """Whether the episode ended with this transition."""
        return self.terminated or self.truncated


class Episode(_Frozen):
    """A whole episode: the task, its initial state and every transition, in order."""

    id: str = Field(default_factory=new_id)
    task: Task
    source: Source = Source.SYNTHETIC
    initial_state: str
    transitions: tuple[Transition, ...] = ()
    group: int = 0
    """Index of this rollout among the rollouts of the same task (GRPO group member)."""
    seed: int | None = None
    started_at: float = 0.0
    """Unix time the episode was reset."""
    ended_at: float | None = None
    """Unix time the episode ended; ``None`` while it runs."""

    @property
    def total_reward(self) -> float:
        """Sum of the step rewards."""
        return sum(t.reward for t in self.transitions)

    @property
    def success(self) -> bool:
        """Whether the final transition reports success."""
        return bool(self.transitions) and self.transitions[-1].success

    @property
    def terminated(self) -> bool:
        return bool(self.transitions) and self.transitions[-1].terminated

    @property
    def truncated(self) -> bool:
        return bool(self.transitions) and self.transitions[-1].truncated

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    def __len__(self) -> int:
        return len(self.transitions)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What ``Env.step`` returns; unpacks as gymnasium's 5-tuple.

    ``obs, reward, terminated, truncated, info = await env.step(action)``
    """

    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def done(self) -> bool:
        """Whether the episode ended (terminated or truncated)."""
        return self.terminated or self.truncated

    def __iter__(self) -> Iterator[Any]:
        return iter((self.observation, self.reward, self.terminated, self.truncated, self.info))
