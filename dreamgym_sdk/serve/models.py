"""The experience model a server shares between its sessions, built from the configuration."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from dreamgym_sdk.experience.base import ExperienceModel, ExperienceOutput, ExperienceRequest, Prediction
from dreamgym_sdk.serve.config import ServeConfig
from dreamgym_sdk.types import Provenance, Task

__all__ = ["ECHO_MODEL", "EchoExperienceModel", "open_experience_model"]

ECHO_MODEL = "testing:echo"
"""The model string of :class:`EchoExperienceModel`."""


class EchoExperienceModel:
    """An instant, offline experience model for smoke tests, demos and benchmarks.

    The next state repeats the action; the action ``done`` ends the episode with success and reward 1.
    """

    def __init__(self) -> None:
        self._provenance = Provenance(model=ECHO_MODEL, prompt_version="n/a")

    async def initial_state(self, task: Task) -> str:
        """``"Task: <instruction>"``."""
        return f"Task: {task.instruction}"

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """Echo the action; ``done`` finishes the task."""
        done = request.action.strip().lower() == "done"
        output = ExperienceOutput(
            reasoning="echo model: the action is repeated",
            next_state=f"You did: {request.action}",
            reward=1.0 if done else 0.0,
            done=done,
            success=done,
        )
        return Prediction(output, self._provenance)


@asynccontextmanager
async def open_experience_model(config: ServeConfig) -> AsyncGenerator[ExperienceModel]:
    """The experience model named by ``config.model``, closed (its provider and buffer) on exit.

    ``testing:echo`` gives :class:`EchoExperienceModel`; any other string is built as ``dreamgym train``
    builds it (:func:`~dreamgym_sdk.grounding.open_grounded_model`): a distilled directory as it was
    trained, a provider model string (LiteLLM convention, ``hf:``, ``vllm:``) wrapped in
    :class:`~dreamgym_sdk.ReasoningExperienceModel` with ``config.reasoning``, either grounded on
    ``config.replay``, called as ``config.provider`` says.
    """
    if config.model == ECHO_MODEL:
        yield EchoExperienceModel()
        return
    from dreamgym_sdk.grounding import ExperienceSection, open_grounded_model

    experience = ExperienceSection(
        model=config.model,
        api_base=config.api_base,
        provider=config.provider,
        reasoning=config.reasoning,
        max_steps=config.max_steps,
    )
    async with open_grounded_model(
        experience, config.replay, api_key=config.api_key_value(), reasoning_key="reasoning"
    ) as model:
        yield model
