"""SFT examples for a distilled experience model: exactly the reasoning model's prompt, the contract's JSON.

Each annotated real transition becomes one prompt-completion example:

- the **prompt** is what :class:`~dreamgym_sdk.experience.ReasoningExperienceModel` sends for that step,
  made by the same :func:`~dreamgym_sdk.experience.prompts.build_messages`: the task, the episode's
  earlier steps, the state, the action and the top-k real transitions retrieved from a replay buffer of
  the *training* transitions (never the transition itself, nor its episode, nor by default its game:
  at inference on unseen games, grounding comes from other games too);
- the **completion** is the contract's JSON object, reasoning first: ``{"reasoning", "next_state",
  "reward", "done", "success"}``. Trained with the loss on the completion only, this is the paper's joint
  objective ``-log P(R* | s, a, H, D_k) - log P(s' | s, a, R*, H, D_k)``.

``done`` is the environment's *termination* (won or lost), not a truncation by a step limit, which no
model can see coming. Examples are split **by task** (for TextWorld, one task per game): no game has
examples on both sides. An optional ablation mix builds some examples with history, retrieval or reasoning
switched off, so that one model answers all the prompt variants the fidelity evaluation compares.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dreamgym_sdk.errors import ConfigError, ModelOutputError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.experience.parsing import AnswerFormat, RewardMode, parse_experience_output, render_answer
from dreamgym_sdk.experience.prompts import build_messages
from dreamgym_sdk.experience.reasoning import (
    TASK_FETCH,
    ReasoningConfig,
    RetrievalScope,
    same_action,
    same_action_first,
)
from dreamgym_sdk.replay.base import Retriever, SearchHit
from dreamgym_sdk.types import Source, Task, Transition

__all__ = [
    "VARIANTS",
    "DatasetConfig",
    "DistillDataset",
    "SFTExample",
    "Variant",
    "build_dataset",
    "build_examples",
    "experience_target",
    "read_examples",
    "split_by_task",
    "target_reward",
    "write_examples",
]

Variant = Literal["full", "no-history", "no-retrieval", "no-reasoning"]
"""A prompt variant: everything on, or one conditioning input switched off (the paper's ablations)."""
VARIANTS: tuple[Variant, ...] = ("full", "no-history", "no-retrieval", "no-reasoning")


class DatasetConfig(BaseModel):
    """How SFT examples are built. The prompt settings are recorded with the distilled model, and the
    model is later asked with the same :class:`~dreamgym_sdk.experience.ReasoningConfig`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(default=1, ge=0, le=16)
    """Retrieved real transitions shown in each prompt (1 keeps CPU training short; raise it on a GPU)."""
    history_window: int = Field(default=1, ge=0)
    """Besides step 0, how many recent steps of the episode the prompt shows."""
    history_max_chars: int = Field(default=2_000, ge=200)
    """Character budget of the rendered history."""
    example_max_chars: int = Field(default=800, ge=100)
    """Each field of a retrieved example is clipped to this many characters."""
    reward_mode: RewardMode = "dense"
    """``"dense"``: the target reward is the environment's (TextWorld: the score change, 0 or 1 per
    step); ``"outcome"``: 1 on the step that accomplishes the task, else 0 (the paper's default)."""
    answer_format: AnswerFormat = "json"
    """How the model is trained to answer: the contract's JSON object, or the plain ``sections`` the
    examples are shown in (no quoting or escaping: far fewer unusable answers from a small model)."""
    exclude: Literal["episode", "task"] = "task"
    """What retrieval may not return for an example: the transition's own episode, or its whole task
    (game), as when the model later meets unseen games."""
    retrieval_scope: RetrievalScope = "environment"
    """Where examples are retrieved from, as the model will retrieve them (see
    :attr:`~dreamgym_sdk.experience.ReasoningConfig.retrieval_scope`)."""
    contrast_share: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of examples (drawn per transition, with ``seed``) whose examples leave out the transition's
    own action, with ``retrieval_scope="action"``: the model then sees another action of the game (the same
    verb first) as it does when a policy tries what no real episode tried, and learns to read the action
    instead of copying an example's outcome. (On the demo's cut world it did not make a 1-million-parameter
    model stricter: see the demo's results page.)"""
    embedder: str = "minilm"
    """Embedder of the retrieval buffer (``minilm``, ``hashing``, ``hf:<path>``; see ``make_embedder``)."""
    ablation_mix: dict[Variant, float] = Field(default_factory=lambda: {"full": 1.0})
    """Share of examples built with each prompt variant (weights, normalised); one variant per
    transition, drawn reproducibly from ``seed`` and the transition id."""
    held_out_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of tasks (games) whose examples go to the validation split."""
    seed: int = 0
    """Seed of the split and of the variant draws."""

    @field_validator("ablation_mix")
    @classmethod
    def _check_mix(cls, mix: dict[Variant, float]) -> dict[Variant, float]:
        if not mix or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("ablation_mix needs non-negative weights with a positive sum")
        return mix

    def reasoning_config(self, variant: Variant = "full", **overrides: Any) -> ReasoningConfig:
        """The experience model's configuration that renders this dataset's prompts for ``variant``."""
        return ReasoningConfig(
            k=self.k,
            history_window=self.history_window,
            history_max_chars=self.history_max_chars,
            example_max_chars=self.example_max_chars,
            reward_mode=self.reward_mode,
            answer_format=self.answer_format,
            retrieval_scope=self.retrieval_scope,
            use_history=variant != "no-history",
            use_retrieval=variant != "no-retrieval",
            use_reasoning=variant != "no-reasoning",
            **overrides,
        )


class SFTExample(BaseModel):
    """One conversational prompt-completion example (the format TRL's ``SFTTrainer`` reads)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: list[dict[str, str]]
    """The system and user messages, as ``{"role", "content"}``."""
    completion: list[dict[str, str]]
    """One assistant message: the contract's JSON object."""
    transition_id: str
    task_id: str
    episode_id: str
    variant: Variant = "full"
    retrieved_ids: list[str] = Field(default_factory=list[str])

    def trl_record(self) -> dict[str, Any]:
        """The fields ``SFTTrainer`` reads."""
        return {"prompt": self.prompt, "completion": self.completion}


@dataclass(frozen=True, slots=True)
class DistillDataset:
    """What :func:`build_dataset` made."""

    train: list[SFTExample]
    valid: list[SFTExample]
    replay: list[Transition]
    """The training transitions: the retrieval buffer of the training examples, and of the model later."""
    skipped: dict[str, str] = field(default_factory=dict[str, str])
    """Transition id → why it made no example (a reward outside [0, 1], an inconsistent target)."""

    @property
    def train_tasks(self) -> set[str]:
        """Ids of the tasks of the training examples."""
        return {e.task_id for e in self.train}

    @property
    def valid_tasks(self) -> set[str]:
        """Ids of the tasks of the validation examples."""
        return {e.task_id for e in self.valid}


def target_reward(transition: Transition, reward_mode: RewardMode) -> float:
    """The reward an experience model should predict for ``transition``: the recorded reward (dense), or
    1 when the step accomplishes the task and 0 otherwise (outcome)."""
    if reward_mode == "outcome":
        return 1.0 if transition.success else 0.0
    return transition.reward


def experience_target(
    transition: Transition,
    *,
    reward_mode: RewardMode,
    use_reasoning: bool = True,
    answer_format: AnswerFormat = "json",
) -> str:
    """The answer the model is trained to write for ``transition``, in ``answer_format``, reasoning first
    (omitted when ``use_reasoning`` is off, as the prompt then asks).

    Raises:
        ModelOutputError: the answer would not pass :func:`~dreamgym_sdk.experience.parsing.
            parse_experience_output` (a dense reward outside [0, 1], or an outcome reward inconsistent
            with done and success).
    """
    t = transition
    text = render_answer(
        t.reasoning if use_reasoning else None,
        t.next_state,
        target_reward(t, reward_mode),
        t.terminated,
        t.success,
        answer_format=answer_format,
    )
    parse_experience_output(
        text, answer_format=answer_format, use_reasoning=use_reasoning, reward_mode=reward_mode
    )
    return text


def _draw(seed: int, purpose: str, transition_id: str) -> float:
    """A reproducible uniform draw in [0, 1) for one transition and one purpose."""
    return random.Random(f"{seed}:{purpose}:{transition_id}").random()


def _draw_variant(mix: Mapping[Variant, float], seed: int, transition_id: str) -> Variant:
    names: list[Variant] = [v for v in VARIANTS if mix.get(v, 0.0) > 0]
    if len(names) == 1:
        return names[0]
    rng = random.Random(f"{seed}:variant:{transition_id}")
    weights = [mix.get(v, 0.0) for v in names]
    chosen: Variant = rng.choices(names, weights=weights)[0]
    return chosen


def split_by_task(
    transitions: Sequence[Transition], held_out_fraction: float, *, seed: int = 0
) -> tuple[list[Transition], list[Transition]]:
    """Split ``transitions`` into (train, held-out) by task: a task's transitions all go to one side.

    ``round(held_out_fraction * number of tasks)`` tasks, drawn with ``seed``, are held out (at least one
    when the fraction is positive and there are two tasks or more).
    """
    tasks = sorted({t.task_id for t in transitions})
    count = round(held_out_fraction * len(tasks))
    if held_out_fraction > 0 and len(tasks) > 1:
        count = min(max(count, 1), len(tasks) - 1)
    held: set[str] = set(random.Random(f"{seed}:split").sample(tasks, count)) if count else set()
    return [t for t in transitions if t.task_id not in held], [t for t in transitions if t.task_id in held]


async def _retrieve(
    retriever: Retriever,
    t: Transition,
    k: int,
    exclude: Literal["episode", "task"],
    scope: RetrievalScope = "environment",
    *,
    contrast: bool = False,
) -> list[SearchHit]:
    """The top ``k`` real transitions for ``t``, none of its episode (or task), as the model retrieves them
    at inference (with ``scope="task"``, the same task's first, topped up from the environment); fetches
    more until enough remain after the exclusion or the buffer is exhausted. ``contrast`` leaves out the
    task's transitions of ``t``'s own action."""

    async def search(task_id: str | None, want: int) -> list[SearchHit]:
        fetch = 4 * want + 8
        while True:
            hits = await retriever.search(
                t.state, t.action, k=fetch, environment=t.environment, task_id=task_id, source=Source.REAL
            )
            kept = [
                h
                for h in hits
                if h.transition.id != t.id
                and h.transition.episode_id != t.episode_id
                and (exclude == "episode" or h.transition.task_id != t.task_id)
            ]
            if len(kept) >= want or len(hits) < fetch:
                return kept[:want]
            fetch *= 4

    kept: list[SearchHit] = []
    if scope != "environment" and exclude == "episode":
        if scope == "action":  # all of the task's transitions, the same action's first
            kept = same_action_first(await search(t.task_id, max(k, TASK_FETCH)), t.action)
            if contrast:
                kept = [h for h in kept if not same_action(h.transition.action, t.action)]
            kept = kept[:k]
        else:
            kept = await search(t.task_id, k)
    if len(kept) < k:
        seen = {h.transition.id for h in kept}
        kept += [h for h in await search(None, k + len(kept)) if h.transition.id not in seen][: k - len(kept)]
    return kept


def _task_of(t: Transition, tasks: Mapping[str, Task]) -> Task:
    return tasks.get(t.task_id) or Task(id=t.task_id, instruction="", environment=t.environment)


async def build_examples(
    transitions: Sequence[Transition],
    *,
    tasks: Mapping[str, Task],
    retriever: Retriever | None,
    config: DatasetConfig,
    episodes: Mapping[str, Sequence[Transition]] | None = None,
    on_example: Callable[[], None] | None = None,
) -> tuple[list[SFTExample], dict[str, str]]:
    """One example per transition (in order), and the transitions skipped with the reason.

    Args:
        transitions: annotated real transitions.
        tasks: task id → task (the instruction shown in the prompt); unknown tasks get an empty one.
        retriever: the buffer grounding examples are retrieved from; ``None`` shows none.
        config: prompt settings, reward mode and ablation mix.
        episodes: episode id → its transitions, for the history (defaults to ``transitions``' own).
        on_example: called after each transition (progress bars).
    """
    from dreamgym_sdk.distill.ground_truth import episodes_of

    by_episode = dict(episodes) if episodes is not None else dict(episodes_of(transitions))
    examples: list[SFTExample] = []
    skipped: dict[str, str] = {}
    for t in transitions:
        variant = _draw_variant(config.ablation_mix, config.seed, t.id)
        rconfig = config.reasoning_config(variant)
        try:
            target = experience_target(
                t,
                reward_mode=config.reward_mode,
                use_reasoning=rconfig.use_reasoning,
                answer_format=config.answer_format,
            )
        except ModelOutputError as exc:
            skipped[t.id] = exc.reason
            if on_example is not None:
                on_example()
            continue
        hits: list[SearchHit] = []
        if rconfig.use_retrieval and retriever is not None and config.k > 0:
            contrast = _draw(config.seed, "contrast", t.id) < config.contrast_share
            hits = await _retrieve(
                retriever, t, config.k, config.exclude, config.retrieval_scope, contrast=contrast
            )
        history = tuple(h for h in by_episode.get(t.episode_id, ()) if h.step < t.step)
        request = ExperienceRequest(
            task=_task_of(t, tasks),
            state=t.state,
            action=t.action,
            history=history,
            episode_id=t.episode_id,
            step=t.step,
        )
        messages = build_messages(request, hits, rconfig)
        examples.append(
            SFTExample(
                prompt=[{"role": m.role, "content": m.content} for m in messages],
                completion=[{"role": "assistant", "content": target}],
                transition_id=t.id,
                task_id=t.task_id,
                episode_id=t.episode_id,
                variant=variant,
                retrieved_ids=[h.transition.id for h in hits],
            )
        )
        if on_example is not None:
            on_example()
    return examples, skipped


async def build_dataset(
    transitions: Sequence[Transition],
    *,
    tasks: Mapping[str, Task] | None = None,
    config: DatasetConfig | None = None,
    retriever: Retriever | None = None,
    on_example: Callable[[], None] | None = None,
) -> DistillDataset:
    """Split annotated real transitions by task and build the SFT examples of both sides.

    Retrieval for every example (training and validation) searches the training transitions only, as the
    distilled model's own buffer will at inference.

    Args:
        transitions: annotated real transitions (``source="real"``; others are ignored).
        tasks: task id → task, for the instructions.
        config: prompt settings, split and ablation mix.
        retriever: search this buffer instead of an in-memory buffer of the training transitions made with
            ``config.embedder``.
        on_example: called after each transition (progress bars).

    Raises:
        ConfigError: no real transitions.
    """
    cfg = config or DatasetConfig()
    real = [t for t in transitions if t.source is Source.REAL]
    if not real:
        raise ConfigError("no real transitions to build a dataset from")
    train, held = split_by_task(real, cfg.held_out_fraction, seed=cfg.seed)
    known = tasks or {}

    async def build(buffer: Retriever | None) -> DistillDataset:
        train_examples, skipped = await build_examples(
            train, tasks=known, retriever=buffer, config=cfg, on_example=on_example
        )
        valid_examples, skipped_valid = await build_examples(
            held, tasks=known, retriever=buffer, config=cfg, on_example=on_example
        )
        return DistillDataset(train_examples, valid_examples, train, {**skipped, **skipped_valid})

    if retriever is not None or cfg.k == 0:
        return await build(retriever)
    from dreamgym_sdk.embeddings import make_embedder
    from dreamgym_sdk.replay import InMemoryReplayBuffer

    async with InMemoryReplayBuffer(embedder=make_embedder(cfg.embedder)) as buffer:
        await buffer.add(train)
        return await build(buffer)


def write_examples(examples: Sequence[SFTExample], path: str | Path) -> None:
    """Write examples as JSON lines."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(e.model_dump_json() + "\n" for e in examples), encoding="utf-8")


def read_examples(path: str | Path) -> list[SFTExample]:
    """Read examples written by :func:`write_examples`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [SFTExample.model_validate_json(line) for line in lines if line.strip()]
