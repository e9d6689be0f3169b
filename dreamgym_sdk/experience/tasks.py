"""Task generation hook: ask the experience model's provider for variations of a task, and pick one.

The paper's curriculum generator uses the same model as the experience model: it takes a seed task the
agent sometimes solves and sometimes fails (high reward variance), proposes ``k`` variations, filters
them (feasible, well-formed, meaningfully different) and selects one. This module is the hook only: it
proposes and selects; *which* tasks to vary and how many synthetic tasks to mix in belong to the
curriculum.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import derive_seed
from dreamgym_sdk.experience.parsing import error_reason, extract_json
from dreamgym_sdk.experience.prompts import clip_text
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, Provider
from dreamgym_sdk.types import Task

__all__ = [
    "Difficulty",
    "TaskCandidate",
    "TaskGenerationConfig",
    "TaskVariationGenerator",
    "instruction_similarity",
]

Difficulty = Literal["easier", "similar", "harder"]
"""Expected difficulty of a variation relative to its parent task."""

_DIFFICULTIES: tuple[Difficulty, ...] = ("easier", "similar", "harder")
_PROMPT_VERSION = "task-v1"
_SYSTEM = (
    "You design tasks for training an agent in an environment. Given a task the agent solves only some of "
    "the time, propose {k} variations of it: tasks of the same kind in the same environment that exercise "
    "the same skills with different specifics (other items, constraints, targets or orders of steps).\n\n"
    "Every variation must be feasible in the environment as described (do not assume items, pages or "
    "objects it does not have), self-contained, unambiguous, and meaningfully different from the original "
    "and from each other. For each one, check feasibility honestly.\n\n"
    "Answer with one JSON object and nothing else:\n"
    '{{"candidates": [{{"instruction": "<the task as the agent will read it>", "rationale": "<why it is a '
    'useful variation>", "difficulty": "easier" | "similar" | "harder", "feasible": true | false, '
    '"feasibility_check": "<what in the environment makes it achievable, or why not>"}}]}}'
)
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "candidates": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "instruction": {"type": "string"},
                    "rationale": {"type": "string"},
                    "difficulty": {"type": "string", "enum": list(_DIFFICULTIES)},
                    "feasible": {"type": "boolean"},
                    "feasibility_check": {"type": "string"},
                },
                "required": ["instruction", "rationale", "difficulty", "feasible", "feasibility_check"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["candidates"],
    "additionalProperties": False,
}


class TaskCandidate(BaseModel):
    """One proposed variation of a task, with the model's own assessment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instruction: str = Field(min_length=1)
    """The new task, as the agent will read it."""
    rationale: str = ""
    """Why this variation is useful."""
    difficulty: Difficulty = "similar"
    """Expected difficulty relative to the parent task."""
    feasible: bool = True
    """The model's feasibility self-check verdict."""
    feasibility_check: str = ""
    """What makes the task achievable in the environment (or why not)."""

    def to_task(self, parent: Task, *, inherit_initial_state: bool = True, **metadata: Any) -> Task:
        """The candidate as a :class:`Task` derived from ``parent``.

        The new task keeps the parent's environment (and, by default, its initial state), records
        ``parent_id``, and carries the candidate's assessment in ``metadata["variation"]``.
        """
        return Task(
            instruction=self.instruction,
            environment=parent.environment,
            initial_state=parent.initial_state if inherit_initial_state else None,
            parent_id=parent.id,
            metadata={
                **metadata,
                "variation": {
                    "rationale": self.rationale,
                    "difficulty": self.difficulty,
                    "feasible": self.feasible,
                    "feasibility_check": self.feasibility_check,
                },
            },
        )


class TaskGenerationConfig(BaseModel):
    """Settings of :class:`TaskVariationGenerator`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    """Sampling temperature; variations need diversity, so it is higher than the experience model's."""
    max_tokens: int = Field(default=1536, ge=64)
    max_retries: int = Field(default=2, ge=0, le=10)
    """Re-asks when no usable candidate comes back."""
    structured_output: bool = True
    """Pass the JSON schema of the answer as ``response_schema``."""
    max_similarity: float = Field(default=0.8, ge=0.0, le=1.0)
    """:meth:`TaskVariationGenerator.select` rejects candidates whose word overlap (Jaccard) with the
    parent task reaches this value."""
    difficulty_preference: tuple[Difficulty, ...] = ("similar", "harder", "easier")
    """The order in which :meth:`TaskVariationGenerator.select` prefers difficulties."""


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower()))


def instruction_similarity(a: str, b: str) -> float:
    """Word-set Jaccard similarity of two instructions (1.0 for identical word sets)."""
    wa, wb = _words(a), _words(b)
    if not wa and not wb:
        return 1.0
    return len(wa & wb) / len(wa | wb)


class TaskVariationGenerator:
    """Proposes variations of a task with an LLM and selects one.

    ```python
    generator = TaskVariationGenerator(provider)
    candidates = await generator.propose(task, k=4)
    chosen = generator.select(candidates, parent=task)
    new_task = chosen.to_task(task) if chosen else None
    ```

    Args:
        provider: the model to ask; the paper uses the experience model's.
        config: sampling, retries and selection settings.
    """

    prompt_version = _PROMPT_VERSION

    def __init__(self, provider: Provider, *, config: TaskGenerationConfig | None = None) -> None:
        self.provider = provider
        self.config = config or TaskGenerationConfig()

    def build_messages(
        self, task: Task, *, k: int, examples: Sequence[Task] = (), guidance: str | None = None
    ) -> list[ChatMessage]:
        """The prompt asking for ``k`` variations of ``task`` (pure)."""
        sections = [f"## Task\n{task.instruction}", f"## Environment\n{task.environment}"]
        if task.initial_state:
            sections.append(f"## Initial state of the environment\n{clip_text(task.initial_state, 4_000)}")
        if examples:
            listed = "\n".join(f"- {e.instruction}" for e in examples)
            sections.append(f"## Other tasks of this environment (do not repeat them)\n{listed}")
        if guidance:
            sections.append(f"## Guidance\n{guidance}")
        sections.append(f"Propose {k} variations.")
        return [
            ChatMessage(role="system", content=_SYSTEM.format(k=k)),
            ChatMessage(role="user", content="\n\n".join(sections)),
        ]

    async def propose(
        self,
        task: Task,
        *,
        k: int = 4,
        examples: Sequence[Task] = (),
        guidance: str | None = None,
        seed: int | None = None,
    ) -> list[TaskCandidate]:
        """Ask for ``k`` variations of ``task``.

        Malformed candidates (missing instruction, wrong types) are dropped, as are duplicates and
        restatements of the parent (same normalised instruction); the rest are returned in the model's
        order, at most ``k``. Infeasible candidates are kept (``feasible=False``) for :meth:`select` to
        filter. When no usable candidate comes back, the model is re-asked up to ``max_retries`` times.

        Args:
            task: the seed task.
            k: how many variations to ask for.
            examples: other tasks of the environment, shown so variations do not repeat them.
            guidance: extra instructions (e.g. "make it harder").
            seed: sampling seed (retries use derived seeds).

        Raises:
            ModelOutputError: no usable candidate after the retries; carries the last raw text.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        config = self.config
        messages = self.build_messages(task, k=k, examples=examples, guidance=guidance)
        last_error: ModelOutputError | None = None
        attempts = config.max_retries + 1
        for attempt in range(attempts):
            response = await self.provider.complete(
                ChatRequest(
                    messages=tuple(messages),
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    seed=seed if attempt == 0 else derive_seed(seed, "attempt", attempt),
                    response_schema=_SCHEMA if config.structured_output else None,
                    schema_name="task_variations",
                )
            )
            try:
                return self._candidates(response.text, task, k, response.finish_reason)
            except ModelOutputError as exc:
                last_error = exc
        assert last_error is not None
        raise ModelOutputError(
            f"no usable task variation: {error_reason(last_error)}",
            raw_text=last_error.raw_text,
            attempts=attempts,
        )

    def _candidates(self, text: str, parent: Task, k: int, finish_reason: str | None) -> list[TaskCandidate]:
        value = extract_json(
            text, prefer_keys=("candidates", "instruction"), finish_reason=finish_reason
        ).value
        raw: Any = value.get("candidates", [value] if "instruction" in value else None)
        if not isinstance(raw, list):
            raise ModelOutputError("'candidates' must be a list of objects", raw_text=text)
        seen = {_normalise(parent.instruction)}
        out: list[TaskCandidate] = []
        for item in cast(list[Any], raw):
            candidate = _candidate(item)
            if candidate is None:
                continue
            key = _normalise(candidate.instruction)
            if key in seen:
                continue
            seen.add(key)
            out.append(candidate)
        if not out:
            raise ModelOutputError("no well-formed candidate that differs from the task", raw_text=text)
        return out[:k]

    def select(
        self, candidates: Sequence[TaskCandidate], *, parent: Task | None = None
    ) -> TaskCandidate | None:
        """Choose one candidate, or ``None`` when none qualifies.

        Rule: drop candidates the model judged infeasible, and (given ``parent``) those whose word overlap
        with the parent reaches ``config.max_similarity``; among the rest, take the first in the model's
        order whose difficulty comes earliest in ``config.difficulty_preference`` (by default "similar",
        then "harder", then "easier": a seed the agent sometimes solves is at the frontier of its ability,
        and variations of the same difficulty keep the reward variance that makes it informative).
        Deterministic: same candidates, same choice.
        """
        config = self.config
        eligible = [
            c
            for c in candidates
            if c.feasible
            and (
                parent is None
                or instruction_similarity(c.instruction, parent.instruction) < config.max_similarity
            )
        ]
        for difficulty in config.difficulty_preference:
            for candidate in eligible:
                if candidate.difficulty == difficulty:
                    return candidate
        return None

    async def vary(self, task: Task, *, k: int = 4, seed: int | None = None) -> Task | None:
        """Propose ``k`` variations, select one, and return it as a task derived from ``task`` (or None)."""
        chosen = self.select(await self.propose(task, k=k, seed=seed), parent=task)
        if chosen is None:
            return None
        return chosen.to_task(task, generator=self.provider.model, prompt_version=self.prompt_version)


def _normalise(instruction: str) -> str:
    return " ".join(re.findall(r"\w+", instruction.lower()))


def _candidate(item: Any) -> TaskCandidate | None:
    """A candidate from one decoded item, with the same unambiguous coercions as experience outputs."""
    if not isinstance(item, dict):
        return None
    data = cast(dict[str, Any], item)
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        return None
    difficulty = str(data.get("difficulty", "similar")).strip().lower()
    feasible: Any = data.get("feasible", True)
    if isinstance(feasible, str) and feasible.strip().lower() in ("true", "false"):
        feasible = feasible.strip().lower() == "true"
    if difficulty not in _DIFFICULTIES or not isinstance(feasible, bool):
        return None
    rationale, check = data.get("rationale", ""), data.get("feasibility_check", "")
    return TaskCandidate(
        instruction=instruction.strip(),
        rationale=rationale if isinstance(rationale, str) else "",
        difficulty=difficulty,
        feasible=feasible,
        feasibility_check=check if isinstance(check, str) else "",
    )
