"""A prompted policy over any provider: hosted models through LiteLLM, servers, local models."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, Provider
from dreamgym_sdk.types import Task, Transition

__all__ = ["LLMPolicy", "LLMPolicyConfig", "parse_action"]

SYSTEM_PROMPT = (
    "You are an agent acting in a text environment. Each turn you see the task, what happened so far and "
    "the current state. Reply with exactly one action on a single line and nothing else."
)


class LLMPolicyConfig(BaseModel):
    """How :class:`LLMPolicy` prompts and samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = SYSTEM_PROMPT
    history_window: int = Field(default=8, ge=0)
    """How many recent steps are shown (older ones are summarised as a count)."""
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int = Field(default=32, ge=1)
    snap_to_admissible: bool = True
    """When the environment lists admissible actions, map the reply to the closest one."""
    max_admissible_shown: int = Field(default=50, ge=1)


class LLMPolicy:
    """A policy that asks an LLM for the next action.

    Use it for evaluation and for prototyping with hosted models before local training. When ``info``
    carries ``admissible_commands`` (TextWorld, ALFWorld, ...), they are listed in the prompt and, with
    ``snap_to_admissible``, the reply is mapped to the closest admissible action (exact match first, then
    the closest by similarity), so a verbose model still produces a valid action.

    Args:
        provider: any :class:`~dreamgym_sdk.providers.Provider`.
        config: prompting and sampling options.
    """

    def __init__(self, provider: Provider, config: LLMPolicyConfig | None = None) -> None:
        self.provider = provider
        self.config = config or LLMPolicyConfig()

    def messages(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> tuple[ChatMessage, ...]:
        """The chat messages sent for one decision (public, so they can be logged or reused for SFT)."""
        cfg = self.config
        lines = [f"Task: {task.instruction}"]
        shown = history[-cfg.history_window :] if cfg.history_window else ()
        if len(history) > len(shown):
            lines.append(f"({len(history) - len(shown)} earlier step(s) omitted)")
        for t in shown:
            lines.append(f"Step {t.step}: action: {t.action} -> {t.next_state}")
        lines.append(f"Current state:\n{observation}")
        admissible = _admissible(info)
        if admissible:
            lines.append("Admissible actions: " + "; ".join(admissible[: cfg.max_admissible_shown]))
        lines.append("Your action:")
        return (
            ChatMessage(role="system", content=cfg.system_prompt),
            ChatMessage(role="user", content="\n".join(lines)),
        )

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        request = ChatRequest(
            messages=self.messages(task, observation, history, info),
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
        )
        response = await self.provider.complete(request)
        admissible = _admissible(info) if self.config.snap_to_admissible else []
        return parse_action(response.text, admissible)


def _admissible(info: Mapping[str, Any]) -> list[str]:
    value: Sequence[object] = info.get("admissible_commands") or info.get("admissible_actions") or []
    return [str(a) for a in value]


_PREFIX = re.compile(r"^\s*(?:action|next action|answer)\s*[:\-]\s*", re.I)


def parse_action(text: str, admissible: Sequence[str] = ()) -> str:
    """Extract one action from a model reply.

    Takes the first non-empty line, drops an ``Action:`` prefix, code fences, list markers and quotes.
    With ``admissible`` actions, returns the exact match (case-insensitive), else the most similar one.
    An empty reply becomes ``""`` (an invalid action, which environments answer with a failure state).
    """
    line = next((ln for ln in text.replace("```", "\n").splitlines() if ln.strip()), "")
    action = _PREFIX.sub("", line).strip().lstrip("-*> ").strip().strip("\"'`").strip().rstrip(".")
    if not admissible:
        return action
    lowered = {a.lower(): a for a in admissible}
    if action.lower() in lowered:
        return lowered[action.lower()]
    best = max(admissible, key=lambda a: difflib.SequenceMatcher(None, a.lower(), action.lower()).ratio())
    return best
