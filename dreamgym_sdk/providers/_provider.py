"""The shared skeleton of the SDK's own providers: concurrency limit, deadlines, retries and the cache."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

import anyio

from dreamgym_sdk.errors import ProviderError
from dreamgym_sdk.providers._retry import call_with_retries
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse
from dreamgym_sdk.providers.cache import ResponseCache, cache_key, is_cacheable
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["BaseProvider"]


class BaseProvider(ABC):
    """Base class of the built-in providers; subclasses implement one attempt and closing.

    :meth:`complete` looks the request up in the response cache (if configured and the request is
    deterministic), then runs :meth:`_attempt` under the concurrency limit, the per-attempt timeout, the
    per-call deadline and the retry policy, and stores the answer.

    Usable as an async context manager; :meth:`aclose` is idempotent.
    """

    _times_attempts: bool = False
    """Set by a backend that enforces ``request_timeout`` itself (raising a retryable timeout)."""

    def __init__(self, model: str, config: ProviderConfig | None = None) -> None:
        self._model = model
        self.config = config or ProviderConfig()
        # A semaphore with fast_acquire, not a CapacityLimiter: a free slot costs no extra trip through
        # the event loop, which measurably matters at thousands of calls per second.
        self._limiter = anyio.Semaphore(self.config.max_concurrency, fast_acquire=True)
        self._cache = ResponseCache(self.config.cache_dir) if self.config.cache_dir is not None else None
        self._closed = False

    @property
    def model(self) -> str:
        """The model string this provider serves."""
        return self._model

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache, if one is configured."""
        return self._cache

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request``, from the cache when possible.

        Raises:
            ProviderError: a typed subclass once retries are exhausted, or when the provider is closed.
        """
        if self._closed:
            raise ProviderError(f"provider {self._model!r} is closed")
        key: str | None = None
        if self._cache is not None and is_cacheable(request):
            key = cache_key(self._model, request, self.config.extra_params)
            hit = await self._cache.get(key)
            if hit is not None:
                return hit
        started = time.perf_counter()
        response = await call_with_retries(
            lambda: self._attempt(request),
            policy=self.config.retry,
            limiter=self._limiter,
            request_timeout=None if self._times_attempts else self.config.request_timeout,
            deadline=self.config.deadline,
            model=self._model,
        )
        response = response.model_copy(update={"latency_s": time.perf_counter() - started})
        if key is not None and self._cache is not None:
            await self._cache.put(key, response)
        return response

    @abstractmethod
    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        """One try; raise ``Retryable(typed_error)`` for transient faults, a typed error otherwise."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources."""

    async def aclose(self) -> None:
        """Release connections, threads, models and the cache. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._close()
        finally:
            if self._cache is not None:
                self._cache.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._model!r}, api_base={self.config.api_base!r})"
