"""Versioned prompt templates of the reasoning experience model, and the pure functions that render them.

:func:`build_messages` is the single place a prompt is made: the reasoning experience model sends its
result to the provider, and the distillation pipeline uses the same function to make the SFT input of a
distilled experience model, so a model is always trained on exactly what it is later asked.

The user message has these sections, in order (each optional section can be switched off in
:class:`~dreamgym_sdk.experience.ReasoningConfig`):

1. ``## Task``: the instruction;
2. ``## Similar transitions``: the top-k retrieved transitions (``use_retrieval``);
3. ``## History``: earlier steps of the episode, windowed (``use_history``, see :func:`window_history`);
4. ``## Current state`` and ``## Action``.

The system message says what the model is, the rules (causal consistency, invalid actions, outcome-only
reward) and the exact JSON object to answer with, reasoning first (``use_reasoning``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.experience.parsing import AnswerFormat, RewardMode, outcome_line
from dreamgym_sdk.providers.base import ChatMessage
from dreamgym_sdk.replay.base import SearchHit
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "DEFAULT_TEMPLATE",
    "HistoryWindow",
    "PromptSettings",
    "PromptTemplate",
    "build_initial_state_messages",
    "build_messages",
    "clip_text",
    "experience_schema",
    "prompt_version",
    "render_history",
    "render_retrieved",
    "window_history",
]


class PromptTemplate(BaseModel):
    """The text of the experience model's prompts. Change ``version`` whenever any text changes.

    ``{reward_rule}`` and ``{output_format}`` in ``system`` are filled in by :func:`build_messages`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = "exp-v1"
    """Recorded in every transition's provenance (with the ablation switches, see :func:`prompt_version`)."""
    system: str = (
        "You are the environment. You simulate, one step at a time, how the environment responds to an "
        "agent's action: you are a faithful world model of that environment.\n\n"
        "States are compact abstract text: the elements that matter, one per line, such as "
        '`[12] button "Buy now"` with stable ids, and short lines of text. Write the next state in the '
        "same format and level of detail as the current state and the examples, and change only what the "
        "action changes.\n\n"
        "Rules:\n"
        "- Be causally consistent: the next state follows from the current state and the action. Never "
        "invent elements, items or facts that the state, the history and the examples do not support.\n"
        "- If the action is invalid, malformed or impossible in the current state, nothing else changes: "
        'the next state is the current state with a line reporting the failure (e.g. "Invalid action: '
        'there is no element [99]"), and the reward is 0.\n'
        "- {reward_rule}\n"
        "- done is true when the task has been accomplished or can no longer be accomplished in this "
        "episode; success is true only when it has been accomplished.\n\n"
        "{output_format}"
    )
    """System message."""
    reward_rule_outcome: str = (
        "Rewards are outcome-only: the reward is 1 only on the step that accomplishes the task (then done "
        "and success are true); every other step has reward 0."
    )
    reward_rule_dense: str = (
        "The reward is a number in [0, 1] measuring the progress this step makes towards the task; it is "
        "1 on the step that accomplishes it."
    )
    output_with_reasoning: str = (
        "Answer with one JSON object and nothing else, with these fields in this order:\n"
        '{"reasoning": "<step by step: what the action does in this state, and why it leads to the next '
        'state and reward>", "next_state": "<the complete next state>", "reward": <number>, '
        '"done": <true|false>, "success": <true|false>}'
    )
    output_without_reasoning: str = (
        "Answer with one JSON object and nothing else, with these fields in this order, and no "
        "explanation:\n"
        '{"next_state": "<the complete next state>", "reward": <number>, "done": <true|false>, '
        '"success": <true|false>}'
    )
    output_sections_with_reasoning: str = (
        "Answer in the format of the examples' last lines, and nothing else:\n"
        "Reasoning: <step by step: what the action does in this state, and why it leads to the next state "
        "and reward>\nNext state:\n<the complete next state>\n"
        "Reward: <number> | Done: <true|false> | Success: <true|false>"
    )
    output_sections_without_reasoning: str = (
        "Answer in the format of the examples' last lines, with no explanation, and nothing else:\n"
        "Next state:\n<the complete next state>\nReward: <number> | Done: <true|false> | Success: "
        "<true|false>"
    )
    closing: str = "Predict the environment's response to the action."
    """Last line of the user message."""
    initial_state_system: str = (
        "You are the environment. Describe the state the environment is in when an episode of the task "
        "below starts, before the agent acts: compact abstract text, the elements that matter one per line "
        '(such as `[12] button "Buy now"` with stable ids) and short lines of text. Do not solve the task.'
        "\n\n"
        'Answer with one JSON object and nothing else: {"initial_state": "<the state>"}'
    )
    """System message of the initial-state request."""
    retry_feedback: str = (
        "Your answer could not be used: {error}. Answer again with only the JSON object, following the "
        "format exactly."
    )
    """User message appended after an unusable answer (``{error}`` is filled in)."""
    retry_feedback_sections: str = (
        "Your answer could not be used: {error}. Answer again with only the sections, following the "
        "format exactly."
    )
    """The same, when the answer format is ``sections``."""


DEFAULT_TEMPLATE = PromptTemplate()
"""The current template (``exp-v1``)."""

_ELIDED = "[... {n} earlier step(s) omitted ...]"


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters by removing its middle, with a marker saying how much."""
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters omitted ...]\n"
    if limit <= len(marker) + 2:
        return text[:limit]
    keep = limit - len(marker)
    head = keep - keep // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """The part of an episode's history shown in the prompt."""

    first: Transition | None
    """Step 0, kept apart from the recent steps (``None`` when dropped or already among them)."""
    recent: tuple[Transition, ...]
    """The most recent steps, oldest first."""
    elided: int
    """How many steps between ``first`` and ``recent`` are left out."""


def window_history(history: Sequence[Transition], window: int) -> HistoryWindow:
    """Keep the first step and the last ``window`` steps; the steps in between are elided.

    The first step is kept because it shows the episode's starting point; the recent steps because they
    carry the state the agent acts on. ``window=0`` keeps only the first step.
    """
    if not history:
        return HistoryWindow(None, (), 0)
    recent = tuple(history[len(history) - window :]) if window > 0 else ()
    if len(recent) >= len(history):
        return HistoryWindow(None, tuple(history), 0)
    return HistoryWindow(history[0], recent, len(history) - len(recent) - 1)


def _render_step(t: Transition, limit: int) -> str:
    return f"Step {t.step}\nState:\n{clip_text(t.state, limit)}\nAction: {clip_text(t.action, limit)}"


def render_history(history: Sequence[Transition], *, window: int, max_chars: int) -> str:
    """Render the windowed history within a character budget.

    Policy, in order: keep step 0 and the last ``window`` steps (:func:`window_history`); while the text
    exceeds ``max_chars``, drop the oldest recent step (the elided count grows) until one is left; then
    drop step 0; finally clip what is left to ``max_chars``. A marker says how many steps were left out.
    Each step shows its state and action; the state the last action led to is the prompt's current state.
    """
    win = window_history(history, window)
    first, recent, elided = win.first, list(win.recent), win.elided

    def render() -> str:
        parts = [_render_step(first, max_chars)] if first is not None else []
        if elided:
            parts.append(_ELIDED.format(n=elided))
        parts.extend(_render_step(t, max_chars) for t in recent)
        return "\n\n".join(parts)

    text = render()
    while len(text) > max_chars and len(recent) > 1:
        recent.pop(0)
        elided += 1
        text = render()
    if len(text) > max_chars and first is not None and recent:
        first = None
        elided += 1
        text = render()
    return clip_text(text, max_chars)


def _transition(item: Transition | SearchHit) -> Transition:
    return item.transition if isinstance(item, SearchHit) else item


def render_retrieved(
    retrieved: Sequence[Transition | SearchHit], *, max_chars: int, include_reasoning: bool = True
) -> str:
    """Render retrieved transitions as numbered examples, best first; each field clipped to ``max_chars``."""
    blocks: list[str] = []
    for number, item in enumerate(retrieved, start=1):
        t = _transition(item)
        lines = [
            f"Example {number}",
            f"State:\n{clip_text(t.state, max_chars)}",
            f"Action: {clip_text(t.action, max_chars)}",
        ]
        if include_reasoning and t.reasoning:
            lines.append(f"Reasoning: {clip_text(t.reasoning, max_chars)}")
        lines.append(f"Next state:\n{clip_text(t.next_state, max_chars)}")
        lines.append(outcome_line(t.reward, t.done, t.success))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class PromptSettings(Protocol):
    """What the prompt builders read of their settings (:class:`~dreamgym_sdk.experience.ReasoningConfig`
    has them all): the inputs shown, their sizes, the answer asked for and the texts."""

    @property
    def use_history(self) -> bool:
        """Whether the prompt shows the episode's earlier steps."""
        ...

    @property
    def use_retrieval(self) -> bool:
        """Whether the prompt shows retrieved transitions."""
        ...

    @property
    def use_reasoning(self) -> bool:
        """Whether the prompt asks for a reasoning trace before the next state."""
        ...

    @property
    def k(self) -> int:
        """How many retrieved transitions to show."""
        ...

    @property
    def history_window(self) -> int:
        """Besides step 0, how many of the most recent steps to show."""
        ...

    @property
    def history_max_chars(self) -> int:
        """Character budget of the rendered history."""
        ...

    @property
    def example_max_chars(self) -> int:
        """Characters kept of each field of a retrieved example."""
        ...

    @property
    def reward_mode(self) -> RewardMode:
        """The rewards asked for: ``"outcome"`` (0 or 1) or ``"dense"``."""
        ...

    @property
    def answer_format(self) -> AnswerFormat:
        """The answer asked for: one JSON object, or plain ``sections``."""
        ...

    @property
    def template(self) -> PromptTemplate:
        """The prompt texts."""
        ...


def prompt_version(config: PromptSettings) -> str:
    """The template version plus the switches that change the prompt, e.g. ``exp-v1`` or
    ``exp-v1/no-history,no-reasoning``."""
    flags = [
        name
        for name, on in (
            ("no-history", not config.use_history),
            ("no-retrieval", not config.use_retrieval),
            ("no-reasoning", not config.use_reasoning),
            ("dense", config.reward_mode == "dense"),
            ("sections", config.answer_format == "sections"),
        )
        if on
    ]
    version = config.template.version
    return f"{version}/{','.join(flags)}" if flags else version


def experience_schema(*, use_reasoning: bool = True) -> dict[str, Any]:
    """The JSON schema of the answer, for providers with structured output.

    Portable on purpose (strict-mode compatible, no numeric bounds some backends reject): the range and
    consistency of the reward are checked by the parser, never trusted to the backend.
    """
    properties: dict[str, Any] = {}
    if use_reasoning:
        properties["reasoning"] = {"type": "string"}
    properties["next_state"] = {"type": "string"}
    properties["reward"] = {"type": "number", "description": "in [0, 1]"}
    properties["done"] = {"type": "boolean"}
    properties["success"] = {"type": "boolean"}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def build_messages(
    request: ExperienceRequest, retrieved: Sequence[Transition | SearchHit], config: PromptSettings
) -> list[ChatMessage]:
    """The chat messages asking for the transition of ``request`` (pure: same inputs, same messages).

    Args:
        request: task, current state, action and history.
        retrieved: grounding transitions, best first; at most ``config.k`` are shown, none when
            ``config.use_retrieval`` is off.
        config: switches and budgets (``use_history``, ``use_retrieval``, ``use_reasoning``, ``k``,
            ``history_window``, ``history_max_chars``, ``example_max_chars``, ``reward_mode``, ``template``).
    """
    template = config.template
    reward_rule = (
        template.reward_rule_outcome if config.reward_mode == "outcome" else template.reward_rule_dense
    )
    if config.answer_format == "sections":
        output_format = (
            template.output_sections_with_reasoning
            if config.use_reasoning
            else template.output_sections_without_reasoning
        )
    else:
        output_format = (
            template.output_with_reasoning if config.use_reasoning else template.output_without_reasoning
        )
    system = template.system.replace("{reward_rule}", reward_rule).replace("{output_format}", output_format)

    task = request.task
    sections = [f"## Task\n{task.instruction}"]
    examples = list(retrieved)[: config.k] if config.use_retrieval else []
    if examples:
        rendered = render_retrieved(
            examples, max_chars=config.example_max_chars, include_reasoning=config.use_reasoning
        )
        sections.append(f"## Similar transitions (real, for grounding)\n{rendered}")
    if config.use_history and request.history:
        rendered = render_history(
            request.history, window=config.history_window, max_chars=config.history_max_chars
        )
        sections.append(f"## History (oldest first)\n{rendered}")
    sections.append(f"## Current state\n{request.state}")
    sections.append(f"## Action\n{request.action}")
    sections.append(template.closing)
    return [
        ChatMessage(role="system", content=system),
        ChatMessage(role="user", content="\n\n".join(sections)),
    ]


def build_initial_state_messages(
    task: Task, config: PromptSettings, examples: Sequence[Transition | SearchHit] = ()
) -> list[ChatMessage]:
    """The chat messages asking for the initial state of ``task``.

    The task's environment and metadata (as JSON, clipped to ``config.example_max_chars``) are shown;
    ``examples`` (e.g. retrieved real transitions of the environment) illustrate the state format.
    """
    sections = [f"## Task\n{task.instruction}", f"## Environment\n{task.environment}"]
    if task.metadata:
        metadata = json.dumps(task.metadata, ensure_ascii=False, sort_keys=True, default=str)
        sections.append(f"## Task metadata\n{clip_text(metadata, config.example_max_chars)}")
    shown = list(examples)[: config.k] if config.use_retrieval else []
    if shown:
        states = [
            f"Example {i}:\n{clip_text(_transition(e).state, config.example_max_chars)}"
            for i, e in enumerate(shown, start=1)
        ]
        sections.append("## Example states of this environment\n" + "\n\n".join(states))
    return [
        ChatMessage(role="system", content=config.template.initial_state_system),
        ChatMessage(role="user", content="\n\n".join(sections)),
    ]
