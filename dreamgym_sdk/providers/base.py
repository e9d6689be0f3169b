"""The provider protocol: one async chat-completion call, whatever serves the model."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChatMessage", "ChatRequest", "ChatResponse", "Provider", "Usage"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(_Frozen):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(_Frozen):
    """A provider-agnostic chat-completion request."""

    messages: tuple[ChatMessage, ...]
    temperature: float = 0.0
    max_tokens: int | None = 512
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    response_schema: dict[str, Any] | None = None
    """A JSON schema the answer must follow; providers that support structured output pass it on."""
    schema_name: str = "response"
    logprobs: bool = False
    """Ask for the token ids of the prompt and the answer and the answer's log-probabilities (what an RL
    trainer needs). OpenAI-compatible servers that support it (vLLM) fill :attr:`ChatResponse.token_ids`
    and friends; others leave them ``None``."""

    @classmethod
    def of(cls, system: str | None, user: str, **kwargs: Any) -> ChatRequest:
        """Shorthand for a request with an optional system message and one user message."""
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=user))
        return cls(messages=tuple(messages), **kwargs)


class Usage(_Frozen):
    """Token usage and cost of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    """Cost when the provider (or LiteLLM's price map) knows it."""


class ChatResponse(_Frozen):
    """A provider's answer."""

    text: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    """``"stop"``, ``"length"`` (truncated), ... as reported by the backend."""
    latency_s: float = 0.0
    cached: bool = False
    """Whether the answer came from the response cache."""
    prompt_token_ids: tuple[int, ...] | None = None
    """The prompt as the server tokenised it (chat template applied), when asked for (``logprobs``)."""
    token_ids: tuple[int, ...] | None = None
    """The answer's token ids, when asked for."""
    logprobs: tuple[float, ...] | None = None
    """The log-probability of each answer token, when asked for."""


@runtime_checkable
class Provider(Protocol):
    """Something that answers chat requests: a hosted API, a server, or an in-process model.

    Implementations retry transient faults themselves and raise :class:`~dreamgym_sdk.ProviderError`
    subclasses for what remains.
    """

    @property
    def model(self) -> str:
        """The model string this provider serves (LiteLLM convention, ``hf:<path>``, ...)."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models. Idempotent."""
        ...
