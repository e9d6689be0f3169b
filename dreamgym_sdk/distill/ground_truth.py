"""The ground truth of recorded steps: what the real environment knew that a stored transition does not keep
(the world's facts, the commands it admitted, its score).

An environment that can replay its episodes recovers it (TextWorld's
:func:`~dreamgym_sdk.integrations.textworld.replay_ground_truth`); annotators (TextWorld's
:class:`~dreamgym_sdk.integrations.textworld.RuleBasedAnnotator`) and the fidelity evaluation
(invalid-action handling) read it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.types import Transition

__all__ = ["GroundTruthReport", "StepGroundTruth", "episodes_of"]


class StepGroundTruth(BaseModel):
    """What the real environment knew about one step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: str
    action_admissible: bool
    """Whether the action was among the commands the game admitted in the state before the step."""
    admissible: tuple[str, ...] = ()
    """The commands the game admitted before the step."""
    facts_before: tuple[str, ...] = ()
    """The world's facts before the step, e.g. ``closed(fridge)``, ``in(red apple, I)``."""
    facts_after: tuple[str, ...] = ()
    """The world's facts after the step."""
    score_before: float = 0.0
    score_after: float = 0.0
    max_score: float = 0.0
    won: bool = False
    lost: bool = False
    feedback: str = ""
    """The game's (cleaned) text answering the action."""


class GroundTruthReport(BaseModel):
    """The ground truth of a collection of transitions, step by step, and the episodes it lacks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: dict[str, StepGroundTruth] = Field(default_factory=dict[str, StepGroundTruth])
    """Transition id → its ground truth."""
    skipped: dict[str, str] = Field(default_factory=dict[str, str])
    """Episode id → why its transitions have no ground truth (no game file, a gap in the steps, or the
    replay did not reproduce the recorded states)."""


def episodes_of(transitions: Iterable[Transition]) -> dict[str, list[Transition]]:
    """Transitions grouped by episode (in order of first appearance), each episode sorted by step."""
    episodes: dict[str, list[Transition]] = {}
    for t in transitions:
        episodes.setdefault(t.episode_id, []).append(t)
    return {eid: sorted(steps, key=lambda t: t.step) for eid, steps in episodes.items()}
