"""A prompted policy over any provider: hosted models through LiteLLM, servers, local models."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.errors import ProviderError
from dreamgym_sdk.policies.base import admissible_actions
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider
from dreamgym_sdk.types import Action, Sample, Task, Transition

__all__ = ["LLMPolicy", "LLMPolicyConfig", "parse_action"]

SYSTEM_PROMPT = (
    "You are an agent acting in a text environment. Each turn you see the task, what happened so far and "
    "the current state. Reply with exactly one action on a single line and nothing else."
)


class LLMPolicyConfig(BaseModel):
    """How :class:`LLMPolicy` prompts and samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = SYSTEM_PROMPT
    prompt_style: Literal["window", "transcript"] = "window"
    """``window``: one user message with the last ``history_window`` steps; ``transcript``: the episode as
    a growing chat (the model's own replies as assistant turns), so on a server whose chat template keeps
    earlier turns as they were, an episode's prompts extend each other and GRPO can train on it as one
    sequence."""
    history_window: int = Field(default=8, ge=0)
    """How many recent steps are shown (older ones are summarised as a count)."""
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int = Field(default=32, ge=1)
    snap_to_admissible: bool = True
    """When the environment lists admissible actions, map the reply to the closest one."""
    max_admissible_shown: int = Field(default=50, ge=1)
    record_samples: bool = False
    """Ask the server for the token ids and log-probabilities of every reply and attach them to the
    action as a :class:`~dreamgym_sdk.types.Sample`, so an RL backend holding the same weights can train
    on the episodes. Needs an OpenAI-compatible server that returns them (vLLM: ``return_token_ids``;
    start it with ``--logprobs-mode processed_logprobs`` so the log-probabilities are those of the
    sampling distribution at ``temperature``); a reply without them raises :class:`ProviderError`."""


class LLMPolicy:
    """A policy that asks an LLM for the next action.

    Use it for evaluation and for prototyping with hosted models before local training. When ``info``
    carries ``admissible_commands`` (TextWorld, ALFWorld, ...), they are listed in the prompt and, with
    ``snap_to_admissible``, the reply is mapped to the closest admissible action (exact match first, then
    the closest by similarity), so a verbose model still produces a valid action.

    **Training it.** With ``record_samples`` the policy records what the server sampled (token ids and
    log-probabilities, from a vLLM server) on every action, so episodes it plays can be trained on by a
    backend holding the same weights locally (:class:`~dreamgym_sdk.training.GRPOBackend` over an
    :class:`~dreamgym_sdk.policies.HFPolicy` of the same model). After each update, get the new weights to
    the server (vLLM's weight-update endpoints, TRL's ``VLLMClient``, or save and reload) and set
    :attr:`version` to the trainer's, so the backend can bound the staleness (``max_policy_lag``).

    Args:
        provider: any :class:`~dreamgym_sdk.providers.Provider`.
        config: prompting and sampling options.
    """

    def __init__(self, provider: Provider, config: LLMPolicyConfig | None = None) -> None:
        self.provider = provider
        self.config = config or LLMPolicyConfig()
        self.version = 0
        """The weight version the server is serving (recorded on samples); set it after a weight sync."""

    def messages(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> tuple[ChatMessage, ...]:
        """The chat messages sent for one decision (public, so they can be logged or reused for SFT)."""
        cfg = self.config
        if cfg.prompt_style == "transcript":
            return self._transcript(task, observation, history, info)
        lines = [f"Task: {task.instruction}"]
        shown = history[-cfg.history_window :] if cfg.history_window else ()
        if len(history) > len(shown):
            lines.append(f"({len(history) - len(shown)} earlier step(s) omitted)")
        for t in shown:
            lines.append(f"Step {t.step}: action: {t.action} -> {t.next_state}")
        lines.append(f"Current state:\n{observation}")
        admissible = admissible_actions(info)
        if admissible:
            lines.append("Admissible actions: " + "; ".join(admissible[: cfg.max_admissible_shown]))
        lines.append("Your action:")
        return (
            ChatMessage(role="system", content=cfg.system_prompt),
            ChatMessage(role="user", content="\n".join(lines)),
        )

    def _transcript(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> tuple[ChatMessage, ...]:
        first = history[0].state if history else observation
        messages = [
            ChatMessage(role="system", content=self.config.system_prompt),
            ChatMessage(role="user", content=f"Task: {task.instruction}\n\nObservation:\n{first}"),
        ]
        for t in history:  # the model's own words where they were recorded
            reply = t.sample.text if t.sample is not None and t.sample.text else t.action
            messages += [
                ChatMessage(role="assistant", content=reply),
                ChatMessage(role="user", content=f"Observation:\n{t.next_state}"),
            ]
        admissible = admissible_actions(info)[: self.config.max_admissible_shown]
        if admissible:
            last = messages[-1]
            text = f"{last.content}\n\nAdmissible actions: " + "; ".join(admissible)
            messages[-1] = ChatMessage(role="user", content=text)
        return tuple(messages)

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """Ask the model for the next action (with its :class:`Sample` when ``record_samples``)."""
        cfg = self.config
        request = ChatRequest(
            messages=self.messages(task, observation, history, info),
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            logprobs=cfg.record_samples,
        )
        response = await self.provider.complete(request)
        admissible = admissible_actions(info) if cfg.snap_to_admissible else []
        action = parse_action(response.text, admissible)
        return Action(action, self._sample(response)) if cfg.record_samples else action

    def _sample(self, response: ChatResponse) -> Sample:
        if response.prompt_token_ids is None or response.token_ids is None or response.logprobs is None:
            raise ProviderError(
                f"{self.provider.model}: the reply carries no token ids or log-probabilities, so the action "
                "cannot be trained on (record_samples needs a server that returns them, such as vLLM)"
            )
        return Sample(
            prompt_ids=response.prompt_token_ids,
            completion_ids=response.token_ids,
            logprobs=response.logprobs,
            temperature=self.config.temperature,
            policy_version=self.version,
            finished=response.finish_reason == "stop",
            text=response.text,
            model=self.provider.model,
        )


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
