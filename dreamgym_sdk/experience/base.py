"""The experience-model protocol: what a DreamEnv asks to synthesise the next transition."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.types import Provenance, Task, Transition

__all__ = ["ExperienceModel", "ExperienceOutput", "ExperienceRequest", "Prediction", "derive_seed"]


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from ``parts`` (the same on every run and platform), e.g. ``(episode_seed, "step", 3)``.

    Seeds derived this way are unrelated however close their parts are: with ``seed + step``, step 1 of
    the episode seeded 10 would share the sampling stream of step 0 of the episode seeded 11 (a GRPO
    group's next rollout), and a retry ``seed + 1`` would replay another step's answer.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 2**31


@dataclass(frozen=True, slots=True)
class ExperienceRequest:
    """Everything the experience model may condition on for one step."""

    task: Task
    state: str
    """The current abstract state s_t."""
    action: str
    """The agent's action a_t."""
    history: tuple[Transition, ...] = ()
    """Earlier transitions of this episode, oldest first."""
    episode_id: str = ""
    step: int = 0
    """Index of the step being synthesised."""
    seed: int | None = None
    """Sampling seed, for reproducible synthesis."""


class ExperienceOutput(BaseModel):
    """The contract's JSON object an experience model produces (reasoning first; extra fields allowed).

    This is also the exact SFT target format for distilled experience models.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    reasoning: str = ""
    """Step-by-step explanation of why the action leads to the next state and reward."""
    next_state: str
    """The next abstract state s_{t+1}."""
    reward: float = Field(ge=0.0, le=1.0)
    """Reward r_{t+1}; outcome-only by default (1 on the successful final step, else 0)."""
    done: bool
    """Whether the episode ended."""
    success: bool = False
    """Whether the task was accomplished."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """An experience model's answer: the contract output plus how it was produced."""

    output: ExperienceOutput
    provenance: Provenance = field(default_factory=Provenance)
    info: dict[str, Any] = field(default_factory=dict[str, Any])
    """Extra data to merge into ``StepResult.info``."""


@runtime_checkable
class ExperienceModel(Protocol):
    """Synthesises transitions. Implemented by the LLM reasoning model and by test doubles."""

    async def initial_state(self, task: Task) -> str:
        """The state an episode of ``task`` starts in, when the task does not carry one."""
        ...

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """The next state, reward and termination for ``request``."""
        ...
