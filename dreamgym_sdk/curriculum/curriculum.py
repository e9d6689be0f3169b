"""The curriculum: turn the tasks whose outcomes vary most into harder variations.

Each iteration the curriculum ranks tasks by group reward variance (see :func:`reward_variance`), asks the
task generator for variations of the top ones, filters the candidates (well-formed, feasible, not a
duplicate) and accepts at most one per seed into the :class:`TaskPool`. Sampling from the pool caps the
share of synthetic tasks at λ (``synthetic_share``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.curriculum.pool import TaskPool
from dreamgym_sdk.curriculum.stats import TaskStats, TaskStatsTracker
from dreamgym_sdk.errors import ExperienceModelError, ProviderError
from dreamgym_sdk.events import Event, TaskAccepted, TaskProposed, TaskRejected
from dreamgym_sdk.experience.tasks import TaskCandidate, instruction_similarity
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.types import Episode, Task

__all__ = ["Curriculum", "CurriculumConfig", "Decision", "TaskGenerator"]

_log = get_logger(__name__)

FeasibilityCheck = Callable[[Task], str | None]
"""Returns ``None`` when a candidate is feasible, else the reason it is not."""


@runtime_checkable
class TaskGenerator(Protocol):
    """Proposes variations of a task (the paper uses the experience model's own LLM)."""

    async def propose(self, task: Task, *, k: int) -> Sequence[Task | TaskCandidate]:
        """Up to ``k`` candidate variations of ``task``, in order of preference.

        :class:`~dreamgym_sdk.experience.TaskVariationGenerator` is the reference implementation: it
        returns :class:`~dreamgym_sdk.experience.TaskCandidate` objects with the model's feasibility
        self-check. Plain tasks are accepted too; one whose ``metadata["variation"]["feasible"]`` is
        ``False`` is rejected as infeasible.
        """
        ...


class CurriculumConfig(BaseModel):
    """Knobs of the curriculum (the paper leaves n, m and λ open; these are our defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_size: int = Field(default=8, ge=2)
    """n: rollouts per task whose rewards make up its variance (the GRPO group)."""
    seeds_per_iteration: int = Field(default=4, ge=1)
    """How many of the highest-variance tasks seed variations each iteration."""
    candidates_per_seed: int = Field(default=4, ge=1)
    """m: candidate variations requested per seed; at most one is accepted."""
    synthetic_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """λ: the largest share of synthetic (generated) tasks in a sampled batch."""
    min_variance: float = Field(default=0.0, ge=0.0)
    """A task seeds variations only if its variance is above this."""
    min_instruction_chars: int = Field(default=8, ge=1)
    max_instruction_chars: int = Field(default=600, ge=1)
    max_similarity: float = Field(default=0.9, gt=0.0, le=1.0)
    """Candidates whose word-set Jaccard similarity to a pool task with the same initial state reaches this
    are duplicates."""
    max_pool_size: int = Field(default=10_000, ge=1)
    """No more variations are accepted once the pool holds this many tasks."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What happened to one candidate."""

    task: Task
    accepted: bool
    reason: str


class Curriculum:
    """Reward-variance curriculum over a :class:`TaskPool`.

    Feed it completed episodes with :meth:`observe` (or subscribe it: ``bus.subscribe(EpisodeCompleted,
    callback=lambda e: curriculum.observe(e.episode))``), call :meth:`expand` once per iteration, and draw
    training tasks with :meth:`sample`.

    Args:
        pool: the task pool to grow.
        generator: proposes variations.
        config: the knobs.
        bus: where to publish ``TaskProposed`` / ``TaskAccepted`` / ``TaskRejected``.
        feasibility: an extra check for candidates (e.g. "mentions only objects the game has").
    """

    def __init__(
        self,
        pool: TaskPool,
        generator: TaskGenerator,
        config: CurriculumConfig | None = None,
        *,
        bus: EventBus | None = None,
        feasibility: FeasibilityCheck | None = None,
    ) -> None:
        self.pool = pool
        self.generator = generator
        self.config = config or CurriculumConfig()
        self.bus = bus
        self.feasibility = feasibility
        self.stats = TaskStatsTracker(self.config.group_size)
        self._expanded: set[str] = set()
        self.generation_failures = 0
        """Seeds whose variation generation failed (bad model output or provider errors)."""

    def observe(self, episode: Episode) -> None:
        """Record a completed episode's outcome."""
        self.stats.observe(episode)

    def seeds(self) -> list[TaskStats]:
        """Pool tasks with a full group, variance above ``min_variance``, not yet expanded, best first."""
        candidates = [
            s
            for s in self.stats.all()
            if s.task_id in self.pool
            and s.task_id not in self._expanded
            and len(s.rewards) >= self.config.group_size
            and s.variance > self.config.min_variance
        ]
        candidates.sort(key=lambda s: s.variance, reverse=True)
        return candidates[: self.config.seeds_per_iteration]

    async def expand(self) -> list[Decision]:
        """Generate, filter and accept variations of the current seeds; return every decision."""
        decisions: list[Decision] = []
        for seed in self.seeds():
            parent = self.pool[seed.task_id]
            self._expanded.add(parent.id)
            try:
                candidates = await self.generator.propose(parent, k=self.config.candidates_per_seed)
            except (ExperienceModelError, ProviderError) as exc:
                # one seed's failed generation must not end the run: count it, log it, move on
                self.generation_failures += 1
                _log.warning("curriculum.generation_failed", task_id=parent.id, error=str(exc)[:300])
                continue
            accepted = False
            for candidate in candidates:
                candidate = _as_child(candidate, parent)
                await self._publish(
                    TaskProposed(task=candidate, reason=f"variance {seed.variance:.3f} of {parent.id}")
                )
                reason = (
                    "not selected: another variation of the same seed was accepted"
                    if accepted
                    else self.check(candidate)
                )
                if reason is None and len(self.pool) >= self.config.max_pool_size:
                    reason = f"pool full: it holds {self.config.max_pool_size} tasks"
                if reason is None:
                    self.pool.add(candidate)
                    accepted = True
                    decisions.append(Decision(candidate, True, "accepted"))
                    await self._publish(TaskAccepted(task=candidate))
                else:
                    decisions.append(Decision(candidate, False, reason))
                    await self._publish(TaskRejected(task=candidate, reason=reason))
        return decisions

    def check(self, task: Task) -> str | None:
        """Why ``task`` must be rejected, or ``None`` if it passes every filter."""
        text = task.instruction.strip()
        cfg = self.config
        if len(text) < cfg.min_instruction_chars:
            return f"malformed: instruction shorter than {cfg.min_instruction_chars} characters"
        if len(text) > cfg.max_instruction_chars:
            return f"malformed: instruction longer than {cfg.max_instruction_chars} characters"
        if not re.search(r"[A-Za-z]{2}", text):
            return "malformed: instruction has no words"
        variation = task.metadata.get("variation")
        if isinstance(variation, dict) and cast(dict[str, Any], variation).get("feasible") is False:
            check = cast(dict[str, Any], variation).get("feasibility_check")
            return f"infeasible: {check or 'the generator judged it infeasible'}"
        if self.feasibility is not None and (why := self.feasibility(task)) is not None:
            return f"infeasible: {why}"
        if task.id in self.pool:
            return f"duplicate: task id {task.id} already in the pool"
        start = _start(task)
        for other in self.pool.tasks:
            if _start(other) != start:
                continue  # the same goal from another start is another task
            similarity = instruction_similarity(text, other.instruction)
            if similarity >= cfg.max_similarity:
                return f"duplicate: {similarity:.2f} similar to task {other.id}"
        return None

    def sample(self, n: int, rng: random.Random) -> list[Task]:
        """Draw ``n`` training tasks with at most ``synthetic_share`` of them synthetic."""
        return self.pool.sample(n, synthetic_share=self.config.synthetic_share, rng=rng)

    async def _publish(self, event: Event) -> None:
        if self.bus is not None:
            await self.bus.publish(event)


def _as_child(candidate: Task | TaskCandidate, parent: Task) -> Task:
    if isinstance(candidate, TaskCandidate):
        return candidate.to_task(parent)
    updates: dict[str, object] = {}
    if candidate.parent_id != parent.id:
        updates["parent_id"] = parent.id
    if candidate.environment != parent.environment:
        updates["environment"] = parent.environment
    return candidate.model_copy(update=updates) if updates else candidate


def _start(task: Task) -> str:
    return " ".join((task.initial_state or "").split())
