"""The data the SDK passes around: tasks, transitions, episodes and step results.

Everything here is immutable and JSON-serialisable through pydantic, so it can travel on the event bus,
into the replay buffer and over the wire unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Action",
    "Episode",
    "Provenance",
    "Sample",
    "Source",
    "StepResult",
    "Task",
    "Transition",
    "fork_task",
    "new_id",
    "sample_of",
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
    history: tuple[Transition, ...] = ()
    """For a fork (:func:`fork_task`): the stored steps that led to ``initial_state``, oldest first. A
    DreamEnv shows them to the experience model as the episode's earlier steps; they are not part of the
    new episode."""


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
    reward_source: str = "model"
    """Who decided the reward, termination and success: ``"model"`` (the experience model's own answer),
    or the name of the :class:`~dreamgym_sdk.experience.RewardSource` that did (``"rule"``, ``"judge"``,
    ...); for a real transition, the environment."""


class Sample(_Frozen):
    """How a policy produced an action: what an RL trainer needs to learn from it.

    Recorded by the policy that sampled the action (:class:`~dreamgym_sdk.policies.HFPolicy`, or an
    :class:`~dreamgym_sdk.policies.LLMPolicy` whose server returns token ids and log-probabilities) and
    carried by the :class:`Transition` the action became, so it travels wherever the episode goes: the
    event bus, JSON, the replay buffer, the serve protocol and Ray. A trainer needs nothing else.
    """

    prompt_ids: tuple[int, ...]
    """The token ids the model was conditioned on."""
    completion_ids: tuple[int, ...]
    """The sampled token ids (ending with the end-of-turn token unless cut at the token limit)."""
    logprobs: tuple[float, ...]
    """Log-probability of each completion token under the distribution it was drawn from:
    ``softmax(logits / temperature)``, renormalised over :attr:`allowed` where that is not empty."""
    allowed: tuple[tuple[int, ...], ...] = ()
    """Per completion token, the token ids constrained decoding could choose from (``()`` for a token drawn
    from the whole vocabulary); empty when decoding was unconstrained."""
    temperature: float = Field(ge=0)
    """The sampling temperature (trainers score at the same one)."""
    policy_version: int = Field(default=0, ge=0)
    """How many weight updates the sampling policy had received (trainers measure staleness with it)."""
    finished: bool = True
    """Whether the completion ended with an end-of-turn token."""
    text: str = ""
    """The decoded completion, as the model wrote it (the action may be parsed or snapped from it)."""
    model: str | None = None
    """Which model sampled it (a path or model string), for auditing."""

    @model_validator(mode="after")
    def _aligned(self) -> Sample:
        if len(self.logprobs) != len(self.completion_ids):
            raise ValueError("a sample needs one log-probability per completion token")
        if self.allowed and len(self.allowed) != len(self.completion_ids):
            raise ValueError("a sample's allowed token ids need one entry per completion token")
        return self


class Action(str):
    """An action string that carries the :class:`Sample` it was drawn from.

    Policies that record what they sampled return one from ``act``; it is a ``str``, so every env and
    framework takes it as it is, and recording envs (:class:`~dreamgym_sdk.DreamEnv`,
    :class:`~dreamgym_sdk.RecordingEnv`, the serve client) store its sample on the transition::

        await env.step(Action("open fridge", sample=sample))  # the transition's .sample is sample

    String operations return plain ``str`` (without the sample).
    """

    sample: Sample | None

    def __new__(cls, text: str, sample: Sample | None = None) -> Action:
        """Make the action ``text``, carrying ``sample``."""
        action = super().__new__(cls, text)
        action.sample = sample
        return action

    def __reduce__(self) -> tuple[Any, ...]:
        return (Action, (str(self), self.sample))

    def __repr__(self) -> str:
        return f"Action({str.__repr__(self)}, sample={'...' if self.sample is not None else None})"


def sample_of(action: str) -> Sample | None:
    """The sample an action carries (``None`` for a plain ``str``)."""
    return action.sample if isinstance(action, Action) else None


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
    sample: Sample | None = None
    """How the policy produced :attr:`action`, when it recorded it (what RL backends train on)."""

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
        """Whether the final transition ended the task (``terminated``)."""
        return bool(self.transitions) and self.transitions[-1].terminated

    @property
    def truncated(self) -> bool:
        """Whether a limit cut the episode short at its final transition (``truncated``)."""
        return bool(self.transitions) and self.transitions[-1].truncated

    @property
    def done(self) -> bool:
        """Whether the episode ended (terminated or truncated)."""
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


def fork_task(task: Task, history: Sequence[Transition]) -> Task:
    """A task that starts where ``history`` (stored steps of an episode of ``task``, oldest first) left off:
    its initial state is the last step's next state, and a DreamEnv shows the experience model those steps
    as the episode's past. Every rollout of the fork starts from that same state (a GRPO group from one
    stored state); its id is the same for the same fork point, so rollouts of it group together.

    Raises:
        ValueError: ``history`` is empty.
    """
    if not history:
        raise ValueError("a fork needs at least one stored step to start after")
    last = history[-1]
    return task.model_copy(
        update={
            "id": f"{task.id}@{last.id}",
            "parent_id": task.id,
            "initial_state": last.next_state,
            "history": (*task.history, *history),
        }
    )


Task.model_rebuild()
