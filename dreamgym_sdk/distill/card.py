"""The card of a distilled experience model, and opening the model with the settings it was trained on.

A distilled model answers well only when asked with the prompts it was trained on (same sections, same
number of retrieved examples, same reward rule) and grounded by the same kind of retrieval. The card
(``dreamgym_experience.json`` in the model directory) records them; :func:`open_experience_model` reads
it and returns a ready :class:`~dreamgym_sdk.experience.ReasoningExperienceModel` over ``hf:<dir>``,
grounded by the training transitions stored beside the weights (``replay.jsonl``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.collect.sinks import read_jsonl
from dreamgym_sdk.distill.dataset import DatasetConfig, Variant
from dreamgym_sdk.experience.reasoning import ReasoningExperienceModel
from dreamgym_sdk.providers.config import ProviderConfig
from dreamgym_sdk.replay.base import Retriever
from dreamgym_sdk.types import Transition

__all__ = [
    "CARD_FILE",
    "REPLAY_FILE",
    "DistilledModelCard",
    "TrainingSummary",
    "open_experience_model",
    "read_card",
    "read_replay",
]

CARD_FILE = "dreamgym_experience.json"
"""The card's file name in a model directory."""
REPLAY_FILE = "replay.jsonl"
"""The training transitions' file name in a model directory."""


class TrainingSummary(BaseModel):
    """How the model was trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    examples: int
    valid_examples: int = 0
    dropped_too_long: int = 0
    train_tasks: int = 0
    valid_tasks: int = 0
    steps: int = 0
    planned_steps: int = 0
    lm_warmup_steps: int = 0
    """Of the steps, those trained on the whole text before the answer-only objective."""
    train_loss: float | None = None
    """Mean training loss over the run."""
    final_loss: float | None = None
    """The last logged training loss."""
    eval_loss: float | None = None
    """Loss on the validation examples (held-out tasks) at the end."""
    parameters: int = 0
    seconds: float = 0.0
    """Wall time of building and training."""
    variants: dict[str, int] = Field(default_factory=dict[str, int])
    """Training examples per prompt variant."""


class DistilledModelCard(BaseModel):
    """What a distilled experience model was trained on and how to ask it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = 1
    base_model: str | None = None
    """The fine-tuned model; ``None`` for the tiny student built from the data."""
    dataset: DatasetConfig
    """The prompt settings, reward mode, embedder and ablation mix of the training examples."""
    distill: dict[str, Any] = Field(default_factory=dict[str, Any])
    """The :class:`~dreamgym_sdk.distill.DistillConfig` used."""
    training: TrainingSummary
    created_at: float = Field(default_factory=time.time)


def read_card(model_dir: str | Path) -> DistilledModelCard | None:
    """The card of the model in ``model_dir`` (``None`` when it has none: not made by :func:`distill`)."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        return None
    return DistilledModelCard.model_validate_json(path.read_text(encoding="utf-8"))


def read_replay(model_dir: str | Path) -> list[Transition]:
    """The training transitions stored with the model (empty when there are none)."""
    return read_jsonl(Path(model_dir) / REPLAY_FILE)


@asynccontextmanager
async def open_experience_model(
    model_dir: str | Path,
    *,
    variant: Variant = "full",
    retriever: Retriever | None = None,
    provider_config: ProviderConfig | None = None,
    **overrides: Any,
) -> AsyncGenerator[ReasoningExperienceModel]:
    """A :class:`~dreamgym_sdk.experience.ReasoningExperienceModel` for the distilled model in
    ``model_dir``, configured as it was trained.

    ```python
    async with open_experience_model("my-experience-model") as model:
        async with DreamEnv(model, max_steps=20) as env:
            ...
    ```

    Without ``retriever``, an in-memory buffer of the stored training transitions (embedded with the
    card's embedder) grounds it; it is closed on exit, and so is the provider.

    Args:
        model_dir: a directory written by :func:`~dreamgym_sdk.distill.distill`.
        variant: the prompt variant (an ablation switches one input off).
        retriever: ground the model with this buffer instead.
        provider_config: settings of the ``hf:`` provider (e.g. ``backend_options={"max_batch_size": 32}``).
        **overrides: further :class:`~dreamgym_sdk.experience.ReasoningConfig` fields (``max_tokens``, ...).

    Raises:
        FileNotFoundError: ``model_dir`` has no card.
    """
    from dreamgym_sdk.providers import get_provider

    card = await anyio.to_thread.run_sync(read_card, model_dir)
    if card is None:
        raise FileNotFoundError(f"{Path(model_dir) / CARD_FILE} not found: not a distilled experience model")
    config = card.dataset.reasoning_config(variant, **overrides)
    path = await anyio.Path(model_dir).absolute()
    provider = get_provider(f"hf:{path}", provider_config)
    try:
        if retriever is not None or not config.use_retrieval:
            yield ReasoningExperienceModel(provider, retriever=retriever, config=config)
            return
        from dreamgym_sdk.embeddings import make_embedder
        from dreamgym_sdk.replay import InMemoryReplayBuffer

        async with InMemoryReplayBuffer(embedder=make_embedder(card.dataset.embedder)) as buffer:
            await buffer.add(await anyio.to_thread.run_sync(read_replay, model_dir))
            yield ReasoningExperienceModel(provider, retriever=buffer, config=config)
    finally:
        await provider.aclose()
