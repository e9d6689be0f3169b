"""The OpenAI-compatible provider: any server speaking ``/v1/chat/completions`` (vLLM, LiteLLM proxy, Ollama).

Two clients speak the same wire format:

- ``"aiohttp"`` (default): a lean client on one pooled :class:`aiohttp.ClientSession`. Measured on a
  2-core machine at 256 concurrent calls (``benchmarks/bench_providers.py``), it keeps pace with a bare
  aiohttp loop, while ``openai.AsyncOpenAI`` costs several times more CPU per call even on its aiohttp
  transport (request/response model layers) and collapses on its default httpx transport.
- ``"openai"``: ``openai.AsyncOpenAI(base_url=...)``, on its aiohttp transport when ``httpx-aiohttp`` is
  installed (httpx otherwise). Choose it for features of the official SDK; select it with
  ``backend_options={"client": "openai"}``.

Both retry through the shared policy (the SDK's own retries are off) and raise the SDK's typed errors.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from dreamgym_sdk.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
)
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers._retry import Retryable, error_for_status, exception_chain, parse_retry_after
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse
from dreamgym_sdk.providers.config import ProviderConfig

if TYPE_CHECKING:
    import aiohttp
    import openai

__all__ = ["OpenAICompatOptions", "OpenAICompatProvider", "build_chat_body", "parse_chat_body"]

_log = get_logger("dreamgym_sdk.providers.openai_compat")
_OPENAI_BASE = "https://api.openai.com/v1"
_ENV = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "hosted_vllm": ("HOSTED_VLLM_API_BASE", "HOSTED_VLLM_API_KEY"),
}
"""Model-string prefix -> (base URL variable, API key variable), as LiteLLM reads them."""


class OpenAICompatOptions(BaseModel):
    """Backend options of :class:`OpenAICompatProvider` (``ProviderConfig.backend_options``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: Literal["aiohttp", "openai"] = "aiohttp"
    """Which HTTP client speaks to the server (see the module docs)."""
    headers: dict[str, str] = {}
    """Extra HTTP headers sent with every request."""


def build_chat_body(wire_model: str, request: ChatRequest, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a chat-completions request."""
    body: dict[str, Any] = {
        "model": wire_model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
    }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    if request.response_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.response_schema},
        }
    if request.logprobs:  # OpenAI's logprobs; vLLM's return_token_ids adds the token ids
        body["logprobs"] = True
        body["return_token_ids"] = True
    if extra:
        body.update(extra)
    return body


def parse_chat_body(data: Any, model: str) -> ChatResponse:
    """A :class:`ChatResponse` from a decoded chat-completions body.

    Raises:
        ProviderError: the body is not a chat completion.
    """
    try:
        choice: dict[str, Any] = data["choices"][0]
        usage: dict[str, Any] = data.get("usage") or {}
        # One validating call: cheaper than model_construct, and it checks the types.
        return ChatResponse.model_validate(
            {
                "text": choice["message"].get("content") or "",
                "model": str(data.get("model") or model),
                "usage": {
                    "prompt_tokens": usage.get("prompt_tokens") or 0,
                    "completion_tokens": usage.get("completion_tokens") or 0,
                },
                "finish_reason": choice.get("finish_reason"),
                **_tokens(data, choice),
            }
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # pydantic's ValidationError is a ValueError
        raise ProviderError(f"{model}: malformed chat completion ({type(exc).__name__}: {exc})") from exc


def _tokens(data: dict[str, Any], choice: dict[str, Any]) -> dict[str, Any]:
    """Token ids (vLLM's ``return_token_ids``) and per-token log-probabilities, where the body has them."""
    out: dict[str, Any] = {}
    if data.get("prompt_token_ids") is not None:
        out["prompt_token_ids"] = data["prompt_token_ids"]
    if choice.get("token_ids") is not None:
        out["token_ids"] = choice["token_ids"]
    logprobs: dict[str, Any] = choice.get("logprobs") or {}
    content: list[dict[str, Any]] | None = logprobs.get("content")
    if content is not None:
        out["logprobs"] = [entry["logprob"] for entry in content]
    return out


class OpenAICompatProvider(BaseProvider):
    """A provider for any OpenAI-compatible chat-completions server.

    ```python
    provider = OpenAICompatProvider("openai/Qwen2.5-7B-Instruct",
                                    ProviderConfig(api_base="http://localhost:8000/v1"))
    ```

    Args:
        model: ``openai/<name>`` or ``hosted_vllm/<name>`` (LiteLLM convention) or ``<name>``; ``<name>``
            is sent to the server.
        config: ``api_base`` (default: ``$OPENAI_BASE_URL``, else OpenAI's; ``$HOSTED_VLLM_API_BASE``
            for ``hosted_vllm/``, which has no default), ``api_key`` (default: ``$OPENAI_API_KEY``, or
            ``$HOSTED_VLLM_API_KEY`` for ``hosted_vllm/``; none: no ``Authorization`` header), limits,
            retries, cache; ``backend_options`` are :class:`OpenAICompatOptions`.

    Raises:
        ConfigError: a ``hosted_vllm/`` model without a base URL.
    """

    def __init__(self, model: str, config: ProviderConfig | None = None) -> None:
        super().__init__(model, config)
        self.options = OpenAICompatOptions.model_validate(self.config.backend_options)
        prefix, _, name = model.partition("/")
        routed = prefix in _ENV and bool(name)
        self.wire_model = name if routed else model
        base_var, self._key_var = _ENV[prefix if routed else "openai"]
        default_base = None if prefix == "hosted_vllm" else _OPENAI_BASE
        base = self.config.api_base or os.environ.get(base_var) or default_base
        if base is None:
            raise ConfigError(f"{model}: set api_base (or ${base_var}) to the vLLM server's URL")
        self.api_base = base.rstrip("/")
        self._url = self.api_base + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None
        self._times_attempts = self.options.client == "aiohttp"
        self._sdk: openai.AsyncOpenAI | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(model={self.model!r}, api_base={self.api_base!r})"

    def _api_key(self) -> str | None:
        return self.config.key() or os.environ.get(self._key_var) or None

    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        body = build_chat_body(self.wire_model, request, self.config.extra_params)
        if self.options.client == "openai":
            return await self._attempt_sdk(body)
        return await self._attempt_aiohttp(body)

    # -- lean aiohttp client -------------------------------------------------------------------------

    def _aiohttp_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            key = self._api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            headers.update(self.options.headers)
            connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=headers,
                # aiohttp's own timer enforces request_timeout: cheaper than a cancel scope per call
                timeout=aiohttp.ClientTimeout(total=self.config.request_timeout),
                raise_for_status=False,
            )
        return self._session

    async def _attempt_aiohttp(self, body: dict[str, Any]) -> ChatResponse:
        import aiohttp

        session = self._aiohttp_session()
        try:
            async with session.post(self._url, data=orjson.dumps(body)) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientPayloadError as exc:
            raise _transient(
                ProviderConnectionError(f"{self.model}: response body cut short: {exc}"), exc
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise _transient(ProviderConnectionError(f"{self.model}: cannot connect: {exc}"), exc) from exc
        except TimeoutError as exc:  # aiohttp's request_timeout (ServerTimeoutError is one too)
            message = f"{self.model}: no answer within {self.config.request_timeout} s"
            raise _transient(ProviderTimeoutError(message), exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _transient(
                ProviderConnectionError(f"{self.model}: connection failed: {exc!r}"), exc
            ) from exc
        if status != 200:
            text = raw[:300].decode(errors="replace")
            raise error_for_status(
                status, f"{self.model}: HTTP {status}: {text}", retry_after=parse_retry_after(retry_after)
            )
        return self._parse(raw)

    def _parse(self, raw: bytes) -> ChatResponse:
        """The response of a 200 body; a body that is not a chat completion is a transient fault."""
        try:
            data = orjson.loads(raw)
        except ValueError as exc:
            raise _transient(
                ProviderError(f"{self.model}: response is not JSON: {raw[:100]!r}"), exc
            ) from exc
        try:
            return parse_chat_body(data, self.model)
        except ProviderError as exc:
            raise Retryable(exc) from exc

    # -- official SDK client ---------------------------------------------------------------------------

    def _sdk_client(self) -> openai.AsyncOpenAI:
        if self._sdk is None:
            import httpx
            import openai

            limits = httpx.Limits(
                max_connections=self.config.max_concurrency,
                max_keepalive_connections=self.config.max_concurrency,
            )
            try:
                http_client: httpx.AsyncClient = openai.DefaultAioHttpClient(limits=limits)
            except RuntimeError:  # httpx-aiohttp is not installed
                _log.info("provider.httpx_fallback", model=self.model)
                http_client = openai.DefaultAsyncHttpxClient(limits=limits)
            self._sdk = openai.AsyncOpenAI(
                base_url=self.api_base,
                api_key=self._api_key() or "EMPTY",
                max_retries=0,
                timeout=None,
                default_headers=self.options.headers or None,
                http_client=http_client,
            )
        return self._sdk

    async def _attempt_sdk(self, body: dict[str, Any]) -> ChatResponse:
        import httpx
        import openai

        client = self._sdk_client()
        try:
            # The SDK's low-level ``post`` keeps its auth, headers, transport and status errors but skips
            # its per-call request transform and response models (about half of its CPU per call).
            response = await client.post("/chat/completions", body=body, cast_to=httpx.Response)
            raw = await response.aread()
        except openai.APIStatusError as exc:
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
            message = f"{self.model}: HTTP {exc.status_code}: {str(exc)[:300]}"
            error = error_for_status(exc.status_code, message, retry_after=retry_after)
            (error.error if isinstance(error, Retryable) else error).__cause__ = exc
            raise error from exc
        except openai.APITimeoutError as exc:
            if any(isinstance(e, ConnectionRefusedError) for e in exception_chain(exc)):
                # httpx-aiohttp reports a refused connection as a connect *timeout*
                raise _transient(ProviderConnectionError(f"{self.model}: connection refused"), exc) from exc
            raise _transient(ProviderTimeoutError(f"{self.model}: {exc}"), exc) from exc
        except openai.APIConnectionError as exc:
            raise _transient(ProviderConnectionError(f"{self.model}: {exc}"), exc) from exc
        except httpx.HTTPError as exc:  # e.g. a body cut short while the SDK reads it
            raise _transient(ProviderConnectionError(f"{self.model}: {exc!r}"), exc) from exc
        return self._parse(raw)

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None


def _transient(error: ProviderError, cause: BaseException) -> Retryable:
    error.__cause__ = cause
    return Retryable(error)
