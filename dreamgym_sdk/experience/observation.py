"""Observation-only world models: they predict the next observation and nothing else.

The newest open language world models (Qwen-AgentWorld, served by vLLM or SGLang) reason, then give the
next observation inside ``<predicted_observation>`` tags: no reward, no termination. An
:class:`ObservationWorldModel` asks one in its own message format and parses its answer; a
:class:`~dreamgym_sdk.experience.RewardSource` then decides what each step is worth::

    provider = get_provider("hosted_vllm/Qwen/Qwen-AgentWorld-35B-A3B", api_base="http://127.0.0.1:8000/v1")
    model = with_reward(ObservationWorldModel(provider), RuleReward(won_when_said))
"""

from __future__ import annotations

import re
import time

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceOutput, ExperienceRequest, Prediction
from dreamgym_sdk.experience.prompts import clip_text
from dreamgym_sdk.experience.reasoning import attempt_seed, calls_provenance
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider
from dreamgym_sdk.types import Task

__all__ = ["AGENTWORLD_SYSTEM_PROMPT", "ObservationWorldModel", "parse_predicted_observation"]

AGENTWORLD_SYSTEM_PROMPT = """# Role and Objective

You are a **Text Game World Model**: a precise simulator of a text-based game. Your task is to predict \
the exact next observation after the player's action is executed.

Given:
1. **Historical Context** (Optional): Previous interactions in the same trajectory
2. **Task Instruction**: The player's goal
3. **Current State**: The current observation visible to the player
4. **Action**: The player's command to execute

Predict the **exact next observation** after the action completes. Keep the observation's format; if \
the action is invalid or has no effect, say so as the game would.

## Output Requirements

First, think step by step to explain your reasoning. Then, provide the final predicted observation \
wrapped strictly within the `<predicted_observation></predicted_observation>` tags.

Inside the tags, output only the full next observation with no extra commentary."""
"""The Qwen-AgentWorld world-model system prompt (its published OpenClaw template), for text games."""

_TAGGED = re.compile(r"<predicted_observation>(.*?)(?:</predicted_observation>|\Z)", re.S)
_THINK = re.compile(r"<think>(.*?)(?:</think>|(?=<predicted_observation>)|\Z)", re.S)


def parse_predicted_observation(text: str) -> tuple[str, str]:
    """``(reasoning, observation)`` from a world model's answer: the last ``<predicted_observation>`` block
    (an unclosed one runs to the end), the text before it as the reasoning (``<think>`` tags removed,
    closed or not).

    Raises:
        ModelOutputError: no ``<predicted_observation>`` block, or an empty one; keeps ``text``.
    """
    blocks = list(_TAGGED.finditer(text))
    if not blocks:
        raise ModelOutputError("no <predicted_observation> block in the answer", raw_text=text)
    last = blocks[-1]
    observation = last.group(1).strip()
    if not observation:
        raise ModelOutputError("the <predicted_observation> block is empty", raw_text=text)
    before = text[: last.start()]
    reasoning = _THINK.sub(lambda m: m.group(1), before).replace("</think>", "")
    return " ".join(reasoning.split()), observation


class ObservationWorldModel:
    """An :class:`~dreamgym_sdk.ExperienceModel` over an observation-only world model: the next state is
    the model's predicted observation; reward 0 and no termination until a reward source decides
    (:func:`~dreamgym_sdk.experience.with_reward`).

    Args:
        provider: the world model (e.g. Qwen-AgentWorld behind vLLM's OpenAI-compatible server).
        system_prompt: the world model's instructions.
        history_window: earlier steps shown as historical context.
        temperature: sampling temperature (the model card's 0.6 by default).
        max_tokens: answer budget (reasoning included).
        max_retries: extra attempts when an answer has no observation block.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        system_prompt: str = AGENTWORLD_SYSTEM_PROMPT,
        history_window: int = 8,
        temperature: float = 0.6,
        max_tokens: int = 2048,
        max_retries: int = 2,
    ) -> None:
        self.provider = provider
        self.system_prompt = system_prompt
        self.history_window = history_window
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries

    async def initial_state(self, task: Task) -> str:
        """The task's own initial state: an observation model continues a real observation.

        Raises:
            ModelOutputError: the task has none.
        """
        if task.initial_state is None:
            raise ModelOutputError(
                "an observation-only world model starts from the task's initial_state; this task has none",
                raw_text="",
            )
        return task.initial_state

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """The predicted observation (reward 0, not done; a reward source decides those).

        Raises:
            ModelOutputError: no attempt had an observation block; keeps the last raw text.
        """
        messages = (
            ChatMessage(role="system", content=self.system_prompt),
            ChatMessage(role="user", content=self._user_message(request)),
        )
        calls: list[ChatResponse] = []
        started = time.perf_counter()
        error: ModelOutputError | None = None
        for attempt in range(self.max_retries + 1):
            response = await self.provider.complete(
                ChatRequest(
                    messages=messages,
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    seed=attempt_seed(request.seed, attempt),
                )
            )
            calls.append(response)
            try:
                reasoning, observation = parse_predicted_observation(response.text)
            except ModelOutputError as exc:
                error = exc
                continue
            output = ExperienceOutput(reasoning=reasoning, next_state=observation, reward=0.0, done=False)
            elapsed = time.perf_counter() - started
            provenance = calls_provenance(self.provider.model, "agentworld-v1", (), calls, elapsed)
            provenance = provenance.model_copy(update={"reward_source": "none"})
            return Prediction(output, provenance, {"attempts": len(calls)})
        assert error is not None
        raise ModelOutputError(
            f"world model output unusable: {error.reason}", raw_text=error.raw_text, attempts=len(calls)
        )

    def _user_message(self, request: ExperienceRequest) -> str:
        """Qwen-AgentWorld's user message: turn, task, history, current state, action."""
        shown = request.history[-self.history_window :] if self.history_window else ()
        history = "\n\n".join(
            f"Turn {t.step + 1}: action {t.action!r} gave:\n{clip_text(t.next_state, 2_000)}" for t in shown
        )
        return (
            f"### Turn {request.step + 1}\n**Task Instruction:**\n{request.task.instruction}\n\n"
            f"**Historical Context:**\n{history or '(none)'}\n\n"
            f"**Current State:**\n{clip_text(request.state, 8_000)}\n\n**Action:**\n{request.action}"
        )
