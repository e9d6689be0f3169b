"""Reasoning annotation of real transitions: the protocol, the provenance record and the runner.

The paper trains its experience model on real transitions annotated with a reasoning trace that explains
why the action, in that state, leads to the next state and reward. An :class:`Annotator` writes one trace
per transition: :class:`~dreamgym_sdk.integrations.textworld.RuleBasedAnnotator` from the environment's
ground truth (TextWorld facts), :class:`~dreamgym_sdk.distill.LLMAnnotator` with a teacher model (the
paper's way).

:func:`annotate_transitions` runs an annotator over many transitions concurrently and returns the
transitions with their ``reasoning`` filled in plus one :class:`Annotation` per transition: the provenance
of the trace (annotator, teacher model, prompt version, tokens, cost) and whatever ground truth the
annotator saw (whether the action was admissible). :func:`write_annotated` stores both: the transitions as
JSON lines any replay buffer imports, and the annotations in a sidecar file next to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.collect.sinks import read_jsonl
from dreamgym_sdk.distill.ground_truth import StepGroundTruth, episodes_of
from dreamgym_sdk.errors import DreamGymError
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "AnnotatedData",
    "Annotation",
    "AnnotationRequest",
    "Annotator",
    "annotate_transitions",
    "annotations_path",
    "read_annotated",
    "read_annotations",
    "read_tasks",
    "write_annotated",
    "write_tasks",
]


class Annotation(BaseModel):
    """How one transition's reasoning trace was made (its provenance)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: str
    reasoning: str = ""
    """The trace (also written into the transition's ``reasoning``); empty when it failed."""
    annotator: str
    """Name of the annotator, e.g. ``"rules/textworld"`` or ``"llm"``."""
    model: str | None = None
    """The teacher model string (LLM annotators)."""
    prompt_version: str
    """Version of the annotator's rules or prompt; change it whenever their text changes."""
    action_admissible: bool | None = None
    """Ground truth: whether the environment admitted the action (``None`` when unknown)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float | None = None
    error: str | None = None
    """Why no trace could be made (the transition then keeps its old reasoning)."""


@dataclass(frozen=True, slots=True)
class AnnotationRequest:
    """Everything an annotator may read to explain one transition."""

    transition: Transition
    task: Task | None = None
    """The task of the episode (its instruction), when known."""
    history: tuple[Transition, ...] = ()
    """Earlier transitions of the same episode, oldest first."""
    ground_truth: StepGroundTruth | None = None
    """The environment's own account of the step, when available."""


@runtime_checkable
class Annotator(Protocol):
    """Writes the reasoning trace of a transition."""

    @property
    def name(self) -> str:
        """Recorded as :attr:`Annotation.annotator`."""
        ...

    async def annotate(self, request: AnnotationRequest) -> Annotation:
        """The trace of ``request.transition`` and its provenance.

        Raises:
            DreamGymError: no trace could be made (recorded as the annotation's ``error``).
        """
        ...


@dataclass(frozen=True, slots=True)
class AnnotatedData:
    """Transitions with their reasoning traces, and the provenance of each trace."""

    transitions: list[Transition]
    """The input transitions in their order, ``reasoning`` replaced where a trace was made."""
    annotations: list[Annotation]
    """One per transition, in the same order."""

    @property
    def failed(self) -> int:
        """How many transitions got no trace."""
        return sum(a.error is not None for a in self.annotations)


async def annotate_transitions(
    transitions: Iterable[Transition],
    annotator: Annotator,
    *,
    tasks: Mapping[str, Task] | None = None,
    ground_truth: Mapping[str, StepGroundTruth] | None = None,
    concurrency: int = 8,
    on_done: Callable[[Annotation], None] | None = None,
) -> AnnotatedData:
    """Annotate every transition with ``annotator``, ``concurrency`` at a time.

    A transition the annotator cannot explain keeps its reasoning and gets an annotation with ``error``
    set; provider errors and other failures propagate.

    Args:
        transitions: what to annotate; the episodes they belong to give each one its history.
        annotator: writes the traces.
        tasks: task id → task (instructions for the prompt).
        ground_truth: transition id → the environment's account of the step
            (:func:`~dreamgym_sdk.integrations.textworld.replay_ground_truth`).
        concurrency: annotations in flight at once.
        on_done: called after each annotation (progress bars).
    """
    items = list(transitions)
    episodes = episodes_of(items)
    results: list[Annotation | None] = [None] * len(items)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, t: Transition) -> None:
        history = tuple(h for h in episodes[t.episode_id] if h.step < t.step)
        request = AnnotationRequest(
            transition=t,
            task=tasks.get(t.task_id) if tasks else None,
            history=history,
            ground_truth=ground_truth.get(t.id) if ground_truth else None,
        )
        async with limiter:
            try:
                annotation = await annotator.annotate(request)
            except DreamGymError as exc:
                admissible = request.ground_truth.action_admissible if request.ground_truth else None
                annotation = Annotation(
                    transition_id=t.id,
                    annotator=annotator.name,
                    prompt_version=str(getattr(annotator, "prompt_version", "")),
                    action_admissible=admissible,
                    error=f"{type(exc).__name__}: {exc}",
                )
        results[index] = annotation
        if on_done is not None:
            on_done(annotation)

    async with anyio.create_task_group() as group:
        for index, t in enumerate(items):
            group.start_soon(one, index, t)
    annotations = [a for a in results if a is not None]
    out = [
        t if a.error is not None else t.model_copy(update={"reasoning": a.reasoning})
        for t, a in zip(items, annotations, strict=True)
    ]
    return AnnotatedData(out, annotations)


def annotations_path(path: str | Path) -> Path:
    """The sidecar file of the annotations of the transitions in ``path``: ``x.jsonl`` →
    ``x.annotations.jsonl``."""
    file = Path(path)
    return file.with_name(f"{file.stem}.annotations.jsonl")


def write_annotated(data: AnnotatedData, path: str | Path) -> Path:
    """Write the transitions to ``path`` (JSON lines, one ``Transition`` each, as ``read_jsonl`` reads)
    and the annotations to :func:`annotations_path`; returns the sidecar's path. Files are replaced."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(t.model_dump_json() + "\n" for t in data.transitions), encoding="utf-8")
    sidecar = annotations_path(file)
    sidecar.write_text("".join(a.model_dump_json() + "\n" for a in data.annotations), encoding="utf-8")
    return sidecar


def read_annotations(path: str | Path) -> dict[str, Annotation]:
    """Transition id → annotation, from an annotations sidecar (empty if the file does not exist)."""
    file = Path(path)
    if not file.exists():
        return {}
    found: dict[str, Annotation] = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            a = Annotation.model_validate_json(line)
            found[a.transition_id] = a
    return found


def read_annotated(path: str | Path) -> AnnotatedData:
    """The transitions in ``path`` and their annotations from the sidecar (transitions without one get an
    annotation with ``annotator="unknown"``)."""
    file = Path(path)
    transitions = read_jsonl(file)
    known = read_annotations(annotations_path(file))
    annotations = [
        known.get(t.id) or Annotation(transition_id=t.id, annotator="unknown", prompt_version="")
        for t in transitions
    ]
    return AnnotatedData(transitions, annotations)


def write_tasks(tasks: Iterable[Task], path: str | Path) -> None:
    """Write tasks as JSON lines (one ``Task`` each)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(t.model_dump_json() + "\n" for t in tasks), encoding="utf-8")


def read_tasks(path: str | Path) -> dict[str, Task]:
    """Task id → task, from a JSON-lines file of tasks, or a JSON list of them."""
    text = Path(path).read_text(encoding="utf-8").strip()
    if text.startswith("["):
        items: Sequence[object] = json.loads(text)
        tasks = [Task.model_validate(item) for item in items]
    else:
        tasks = [Task.model_validate_json(line) for line in text.splitlines() if line.strip()]
    return {t.id: t for t in tasks}
