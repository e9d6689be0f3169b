"""The LiteLLM provider: hosted models of any vendor through ``litellm.acompletion``.

Model strings follow LiteLLM (``openai/gpt-4o-mini``, ``anthropic/claude-...``, ``hosted_vllm/<name>``
with ``api_base``, ...). Keys come from ``ProviderConfig.api_key`` or the vendor's usual environment
variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...), which LiteLLM reads itself. Parameters a vendor
does not support (e.g. ``seed``) are dropped rather than rejected. Cost comes from LiteLLM's bundled price
map when it knows the model, else ``cost_usd`` is ``None``. LiteLLM's own retries are off: the shared
retry policy applies, and LiteLLM's exceptions are translated here, once, into the SDK's typed errors.

``litellm`` is an optional extra (``pip install 'dreamgym-sdk[litellm]'``), imported on first use with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so that importing it never touches the network. LiteLLM speaks HTTP
through its aiohttp transport (its default).
"""

from __future__ import annotations

from typing import Any

from dreamgym_sdk._imports import import_litellm
from dreamgym_sdk.errors import ProviderConnectionError, ProviderError, ProviderTimeoutError
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers._retry import Retryable, error_for_status, exception_chain, parse_retry_after
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse, Usage
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["LiteLLMProvider", "translate_error"]


class LiteLLMProvider(BaseProvider):
    """A provider for any model LiteLLM can call.

    ```python
    provider = LiteLLMProvider("anthropic/claude-3-5-haiku-latest")  # key from $ANTHROPIC_API_KEY
    ```

    Args:
        model: a LiteLLM model string.
        config: ``api_base`` / ``api_key`` override LiteLLM's defaults; ``extra_params`` are passed to
            ``litellm.acompletion``.
    """

    def __init__(self, model: str, config: ProviderConfig | None = None) -> None:
        super().__init__(model, config)
        self._litellm = import_litellm()

    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        litellm = self._litellm
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,
        }
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.response_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.response_schema},
            }
        if self.config.api_base is not None:
            kwargs["api_base"] = self.config.api_base
        key = self.config.key()
        if key is not None:
            kwargs["api_key"] = key
        if self.config.request_timeout is not None:
            kwargs["timeout"] = self.config.request_timeout
        kwargs.update(self.config.extra_params)
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise translate_error(self.model, exc) from exc
        return self._to_chat_response(response)

    def _to_chat_response(self, response: Any) -> ChatResponse:
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            usage = getattr(response, "usage", None)
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise Retryable(ProviderError(f"{self.model}: malformed completion: {exc}")) from exc
        return ChatResponse(
            text=text,
            model=str(getattr(response, "model", None) or self.model),
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=self._cost(response),
            ),
            finish_reason=getattr(choice, "finish_reason", None),
        )

    def _cost(self, response: Any) -> float | None:
        hidden: dict[str, Any] = getattr(response, "_hidden_params", None) or {}
        if "response_cost" in hidden:  # LiteLLM priced the call already (None: the model has no price)
            cost = hidden["response_cost"]
            return float(cost) if isinstance(cost, int | float) else None
        try:
            return float(self._litellm.completion_cost(completion_response=response, model=self.model))
        except Exception:  # unknown model or price: cost is simply not known
            return None


def translate_error(model: str, exc: Exception) -> Retryable | ProviderError:
    """The SDK's typed error for a LiteLLM exception, wrapped in ``Retryable`` when transient: the one place
    that knows LiteLLM's errors (chat completions and embeddings alike).

    LiteLLM reports transport faults (refused or dropped connections, bodies cut short or not JSON)
    as HTTP 500; the exception chain tells what really happened.
    """
    import httpx
    import openai

    message = f"{model}: {type(exc).__name__}: {str(exc)[:300]}"
    chain = exception_chain(exc)
    error: Retryable | ProviderError
    if any(isinstance(e, openai.APITimeoutError | httpx.TimeoutException | TimeoutError) for e in chain):
        error = Retryable(ProviderTimeoutError(message))
    elif any(
        isinstance(e, openai.APIConnectionError | httpx.TransportError | OSError) for e in chain[1:]
    ) or (isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APIStatusError)):
        error = Retryable(ProviderConnectionError(message))
    elif any(isinstance(e, ValueError | openai.APIResponseValidationError) for e in chain) or (
        0 < int(getattr(exc, "status_code", 0) or 0) < 400  # an answer that was not a completion
    ):
        error = Retryable(ProviderError(f"{model}: malformed response: {message}"))
    elif isinstance(getattr(exc, "status_code", None), int):
        error = error_for_status(int(exc.status_code), message, retry_after=_retry_after(exc))  # type: ignore[attr-defined]
    else:
        error = ProviderError(message)
    (error.error if isinstance(error, Retryable) else error).__cause__ = exc
    return error


def _retry_after(exc: BaseException) -> float | None:
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if headers is not None:
            try:
                value = headers.get("retry-after") or headers.get("Retry-After")
            except AttributeError:
                continue
            if value:
                return parse_retry_after(str(value))
    return None
