"""A teacher LLM that annotates real transitions with reasoning traces (the paper's way).

:class:`LLMAnnotator` shows a teacher model (any provider: hosted, an OpenAI-compatible server, a local
``hf:`` model) the task, the recent history, the state, the action and what really happened (next
state, reward, done, success), plus the environment's own account when known (was the action
admissible, which facts changed), and asks why the action in that state leads to that outcome. The
answer is one JSON object, ``{"reasoning": "..."}``; a malformed answer is re-asked.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.distill.annotate import Annotation, AnnotationRequest
from dreamgym_sdk.distill.dataset import target_reward
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.parsing import RewardMode, error_reason, extract_json
from dreamgym_sdk.experience.prompts import clip_text, render_history
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider

__all__ = ["LLM_ANNOTATOR_VERSION", "LLMAnnotator", "LLMAnnotatorConfig"]

LLM_ANNOTATOR_VERSION = "annotate-v1"
"""Version of the annotation prompt; recorded in every annotation."""

_SYSTEM = (
    "You annotate transitions recorded in a real environment, to teach a world model of that environment. "
    "You see the state the agent was in, its action, and what really happened next. Explain, step by "
    "step and briefly, why the action in this state leads to this next state and reward: whether the "
    "action is possible here, what it changes and why, and how the reward, done and success follow. "
    "Be faithful: state only what the inputs support, never invent objects or facts, and do not restate "
    "the whole next state. Write the explanation as it would be reasoned *before* seeing the outcome.\n\n"
    'Answer with one JSON object and nothing else: {"reasoning": "<the explanation>"}'
)
_SCHEMA = {
    "type": "object",
    "properties": {"reasoning": {"type": "string"}},
    "required": ["reasoning"],
    "additionalProperties": False,
}


class LLMAnnotatorConfig(BaseModel):
    """Settings of :class:`LLMAnnotator`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reward_mode: RewardMode = "dense"
    """How the reward shown to the teacher is read (it must match the dataset's)."""
    history_window: int = Field(default=3, ge=0)
    """Recent steps shown besides step 0."""
    max_chars: int = Field(default=4_000, ge=200)
    """Each state (and the history) is clipped to this many characters."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=16)
    max_retries: int = Field(default=2, ge=0, le=10)
    structured_output: bool = True
    """Pass the JSON schema of the answer as ``response_schema``."""


class LLMAnnotator:
    """Annotates transitions with a teacher model.

    ```python
    annotator = LLMAnnotator(get_provider("openai/gpt-4o-mini"))
    data = await annotate_transitions(transitions, annotator, tasks=tasks, concurrency=16)
    ```

    Args:
        provider: the teacher.
        config: prompt and sampling settings.
    """

    name = "llm"
    prompt_version = LLM_ANNOTATOR_VERSION

    def __init__(self, provider: Provider, *, config: LLMAnnotatorConfig | None = None) -> None:
        self.provider = provider
        self.config = config or LLMAnnotatorConfig()

    def build_messages(self, request: AnnotationRequest) -> list[ChatMessage]:
        """The prompt for ``request`` (pure)."""
        cfg, t = self.config, request.transition
        sections: list[str] = []
        if request.task is not None:
            sections.append(f"## Task\n{request.task.instruction}")
        if request.history:
            history = render_history(request.history, window=cfg.history_window, max_chars=cfg.max_chars)
            sections.append(f"## Earlier steps (oldest first)\n{history}")
        sections.append(f"## State\n{clip_text(t.state, cfg.max_chars)}")
        sections.append(f"## Action\n{t.action}")
        reward = target_reward(t, cfg.reward_mode)
        sections.append(
            f"## What happened\nNext state:\n{clip_text(t.next_state, cfg.max_chars)}\n\n"
            f"Reward: {reward:g} | Done: {str(t.terminated).lower()} | Success: {str(t.success).lower()}"
        )
        truth = request.ground_truth
        if truth is not None:
            before, after = set(truth.facts_before), set(truth.facts_after)
            lines = [f"The action was {'' if truth.action_admissible else 'NOT '}admissible in the state."]
            if after - before:
                lines.append("Facts that became true: " + "; ".join(sorted(after - before)))
            if before - after:
                lines.append("Facts that stopped being true: " + "; ".join(sorted(before - after)))
            lines.append(f"Score: {truth.score_before:g} -> {truth.score_after:g} of {truth.max_score:g}.")
            sections.append("## The environment's own account\n" + "\n".join(lines))
        return [
            ChatMessage(role="system", content=_SYSTEM),
            ChatMessage(role="user", content="\n\n".join(sections)),
        ]

    async def annotate(self, request: AnnotationRequest) -> Annotation:
        """Ask the teacher for the trace of ``request.transition``.

        Raises:
            ModelOutputError: the answer stayed unusable after the retries.
            ProviderError: the provider failed.
        """
        cfg = self.config
        messages = tuple(self.build_messages(request))
        calls: list[ChatResponse] = []
        started = time.perf_counter()
        last: ModelOutputError | None = None
        for _ in range(cfg.max_retries + 1):
            response = await self.provider.complete(
                ChatRequest(
                    messages=messages,
                    temperature=cfg.temperature,
                    max_tokens=cfg.max_tokens,
                    response_schema=_SCHEMA if cfg.structured_output else None,
                    schema_name="annotation",
                )
            )
            calls.append(response)
            try:
                value = extract_json(
                    response.text, prefer_keys=("reasoning",), finish_reason=response.finish_reason
                ).value.get("reasoning")
                if not isinstance(value, str) or not value.strip():
                    raise ModelOutputError("'reasoning' must be a non-empty string", raw_text=response.text)
            except ModelOutputError as exc:
                last = exc
                continue
            costs = [c.usage.cost_usd for c in calls]
            truth = request.ground_truth
            return Annotation(
                transition_id=request.transition.id,
                reasoning=value.strip(),
                annotator=self.name,
                model=self.provider.model,
                prompt_version=self.prompt_version,
                action_admissible=None if truth is None else truth.action_admissible,
                prompt_tokens=sum(c.usage.prompt_tokens for c in calls),
                completion_tokens=sum(c.usage.completion_tokens for c in calls),
                latency_s=time.perf_counter() - started,
                cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
            )
        assert last is not None
        raise ModelOutputError(
            f"annotation unusable: {error_reason(last)}", raw_text=last.raw_text, attempts=len(calls)
        )
