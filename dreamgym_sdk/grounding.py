"""The experience model a configuration describes, grounded on its replay buffer: one builder for
``dreamgym train``, ``dreamgym serve`` and the Python API.

A directory written by ``dreamgym distill`` (``hf:DIR`` or ``DIR``) is opened with the settings on its card
(:func:`~dreamgym_sdk.distill.open_experience_model`) and grounded by a buffer embedded with the card's
embedder (without ``replay.uri``, by the transitions stored with the model); any other model string is a
provider wrapped in a :class:`~dreamgym_sdk.experience.ReasoningExperienceModel` configured by
``experience.reasoning``, grounded on ``replay.uri`` when it is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.experience.reasoning import ReasoningConfig, ReasoningExperienceModel
from dreamgym_sdk.providers.config import ProviderConfig
from dreamgym_sdk.providers.registry import get_provider

if TYPE_CHECKING:
    from dreamgym_sdk.distill import DistilledModelCard
    from dreamgym_sdk.replay import LanceDBReplayBuffer
    from dreamgym_sdk.replay.base import Retriever

__all__ = [
    "ExperienceSection",
    "ReplaySection",
    "buffer_embedder",
    "distilled_model_dir",
    "open_grounded_model",
    "open_replay",
]


class ExperienceSection(BaseModel):
    """The experience model (also the curriculum's task generator, as in the paper)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "hf:runs/experience-model"
    """Any model string: ``hf:<path>``, ``openai/<name>`` (+ ``api_base``), ``anthropic/...``, ... A directory
    written by ``dreamgym distill train`` (``hf:DIR`` or ``DIR``: it has a model card) is opened as it was
    trained: its card sets the prompt settings and the retrieval buffer's embedder."""
    api_base: str | None = None
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    """How the model is called: calls in flight (``max_concurrency``), timeouts, retries, response cache,
    backend options. ``api_base`` above (and an API key given apart) take precedence over the same keys
    here."""
    reasoning: ReasoningConfig = Field(default_factory=ReasoningConfig)
    """Prompt, sampling and retry settings. For a distilled model the card's prompt settings (``k``,
    ``history_window``, ``reward_mode``, ``answer_format``, ``retrieval_scope``, ...) are used; setting one
    of them here to another value is an error naming both. The others (``max_tokens``, ``max_retries``,
    ``temperature``, ...) apply as set."""
    max_steps: int = Field(default=20, ge=1)
    """Synthetic episodes are truncated after this many steps."""


class ReplaySection(BaseModel):
    """Grounding retrieval from a LanceDB replay buffer of real transitions (optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str | None = None
    """The buffer to retrieve from; ``None`` disables retrieval."""
    embedder: str = "minilm"
    """The buffer's embedder when it is not known otherwise: a distilled experience model's card names it
    (setting another one here is an error), and an existing table remembers the one it was built with."""


def distilled_model_dir(model: str) -> tuple[Path, DistilledModelCard] | None:
    """The directory and card of the distilled experience model ``model`` names (``hf:DIR`` or ``DIR``
    with a card written by ``dreamgym distill``); ``None`` for any other model string.

    Raises:
        ConfigError: the directory's card is not a valid card.
    """
    from dreamgym_sdk.distill import CARD_FILE, read_card

    directory = Path(model.removeprefix("hf:"))
    try:
        card = read_card(directory)
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{directory / CARD_FILE} is not a valid model card: {exc}") from None
    return None if card is None else (directory, card)


@contextlib.asynccontextmanager
async def open_grounded_model(
    experience: ExperienceSection,
    replay: ReplaySection,
    *,
    api_key: str | None = None,
    reasoning_key: str = "experience.reasoning",
) -> AsyncGenerator[ReasoningExperienceModel]:
    """The experience model ``experience`` describes, grounded on ``replay``; its provider and buffer are
    closed on exit.

    Args:
        experience: the model string, its server and the reasoning settings.
        replay: the LanceDB buffer of real transitions it retrieves from (read-only), if any.
        api_key: the provider's API key (else the provider reads its usual environment variable).
        reasoning_key: where the reasoning settings live in the caller's config, for error messages.

    Raises:
        ConfigError: a setting contradicts the distilled model's card, or the buffer is missing or empty.
    """
    distilled = distilled_model_dir(experience.model)
    overrides = {} if distilled is None else _reasoning_overrides(experience, *distilled, key=reasoning_key)
    embedder = _buffer_embedder(experience, replay, None if distilled is None else distilled[1])
    async with contextlib.AsyncExitStack() as stack:
        retriever = None if replay.uri is None else await _open_buffer(stack, replay, embedder)
        if distilled is not None:
            from dreamgym_sdk.distill import open_experience_model as open_distilled

            # local generation, unless set otherwise: no request timeout (a CPU batch may take long),
            # wide batches
            given = experience.provider.model_fields_set
            local = experience.provider.model_copy(
                update={
                    k: v
                    for k, v in {"request_timeout": None, "backend_options": {"max_batch_size": 64}}.items()
                    if k not in given
                }
            )
            yield await stack.enter_async_context(
                open_distilled(distilled[0], retriever=retriever, provider_config=local, **overrides)
            )
            return
        options: dict[str, Any] = {"api_base": experience.api_base} if experience.api_base else {}
        if api_key is not None:
            options["api_key"] = api_key
        provider = get_provider(experience.model, experience.provider, **options)
        await stack.enter_async_context(provider)
        yield ReasoningExperienceModel(provider, retriever=retriever, config=experience.reasoning)


def _reasoning_overrides(
    experience: ExperienceSection, directory: Path, card: DistilledModelCard, *, key: str
) -> dict[str, Any]:
    """The reasoning settings given explicitly that the card does not fix.

    Raises:
        ConfigError: an explicit setting differs from the card's.
    """
    given = experience.reasoning
    trained = card.dataset.reasoning_config()
    overrides: dict[str, Any] = {}
    for name in sorted(given.model_fields_set):
        value = getattr(given, name)
        if name not in trained.model_fields_set:
            overrides[name] = value
        elif value != getattr(trained, name):
            raise ConfigError(
                f"{key}.{name} = {value!r} contradicts the card of the distilled model "
                f"{directory} (trained with {name} = {getattr(trained, name)!r}): a distilled model is asked "
                "as it was trained; remove the key"
            )
    return overrides


def _buffer_embedder(
    experience: ExperienceSection, replay: ReplaySection, card: DistilledModelCard | None
) -> str | None:
    """The embedder the buffer is opened with: the card's for a distilled model, else the configured one
    when given (``None``: the one the table was built with, else ``replay.embedder``).

    Raises:
        ConfigError: ``replay.embedder`` is set to another embedder than the card's.
    """
    explicit = "embedder" in replay.model_fields_set
    if card is None:
        return replay.embedder if explicit else None
    if explicit and replay.embedder != card.dataset.embedder:
        raise ConfigError(
            f"replay.embedder = {replay.embedder!r} differs from the embedder the distilled model "
            f"{experience.model} was trained with ({card.dataset.embedder!r}): its retrieved examples "
            "would not be the ones it learned to read; remove the key or rebuild the buffer"
        )
    return card.dataset.embedder


def buffer_embedder(experience: ExperienceSection, replay: ReplaySection) -> str | None:
    """The embedder ``replay``'s buffer is opened with for ``experience`` (``None``: the one its table was
    built with, else ``replay.embedder``).

    Raises:
        ConfigError: ``replay.embedder`` contradicts the distilled model's card.
    """
    distilled = distilled_model_dir(experience.model)
    return _buffer_embedder(experience, replay, None if distilled is None else distilled[1])


async def open_replay(
    stack: contextlib.AsyncExitStack, replay: ReplaySection, embedder: str | None, *, read_only: bool = True
) -> LanceDBReplayBuffer:
    """The LanceDB buffer at ``replay.uri``, closed with ``stack``; ``embedder`` ``None`` opens it with the
    embedder its table was built with (else ``replay.embedder``). Read-write, a missing buffer is created.

    Raises:
        ConfigError: read-only and missing, or built with another embedder.
    """
    from dreamgym_sdk.embeddings import embedder_for_name, make_embedder
    from dreamgym_sdk.errors import ReplayBufferError
    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig, stored_embedder

    uri = replay.uri
    assert uri is not None
    config = ReplayConfig(uri=uri, embedder=embedder or replay.embedder, read_only=read_only)
    stored = None if embedder is not None else await stored_embedder(config)
    chosen = embedder_for_name(*stored) if stored is not None else make_embedder(config.embedder)
    try:
        return await stack.enter_async_context(LanceDBReplayBuffer(config, embedder=chosen))
    except ReplayBufferError as exc:
        raise ConfigError(f"replay.uri: {exc}") from None


async def _open_buffer(
    stack: contextlib.AsyncExitStack, replay: ReplaySection, embedder: str | None
) -> Retriever:
    """The LanceDB buffer at ``replay.uri``, read-only, closed with ``stack``.

    Raises:
        ConfigError: it is missing, built with another embedder, or empty.
    """
    buffer = await open_replay(stack, replay, embedder)
    uri = replay.uri
    if await buffer.count() == 0:
        raise ConfigError(
            f"replay buffer {uri} is empty: nothing to ground the experience model on (fill it with "
            "`dreamgym replay import FILE --uri URI`, or unset replay.uri)"
        )
    return buffer
