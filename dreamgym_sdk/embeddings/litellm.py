"""Hosted embeddings through LiteLLM (OpenAI, Cohere, Voyage, Bedrock, any OpenAI-compatible server)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import anyio
import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk._imports import import_litellm
from dreamgym_sdk.embeddings._vectors import normalize_rows
from dreamgym_sdk.errors import ProviderError
from dreamgym_sdk.providers._retry import call_with_retries
from dreamgym_sdk.providers.config import RetryPolicy
from dreamgym_sdk.providers.litellm import translate_error

__all__ = ["LiteLLMEmbedder"]


class LiteLLMEmbedder:
    """Embeds text with any embedding model LiteLLM can call (``litellm.aembedding``).

    ```python title="needs an API key"
    embedder = LiteLLMEmbedder("openai/text-embedding-3-small", dim=1536)
    ```

    Args:
        model: a LiteLLM model string.
        dim: the model's vector length (checked on every answer).
        batch_size: texts per request.
        retry: how transient faults (429 and 5xx, timeouts, dropped connections) are retried, as for a
            chat provider (LiteLLM's own retries are off).
        **params: passed to ``litellm.aembedding`` (``api_base``, ``api_key``, ``dimensions``, ...).
    """

    def __init__(
        self, model: str, *, dim: int, batch_size: int = 256, retry: RetryPolicy | None = None, **params: Any
    ) -> None:
        if dim < 1 or batch_size < 1:
            raise ValueError("dim and batch_size must be >= 1")
        self.model = model
        self._dim = dim
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.params = {"num_retries": 0} | params
        self._limiter = anyio.CapacityLimiter(1)  # one request at a time: embed() sends its batches in turn

    @property
    def name(self) -> str:
        """``litellm:<model>:<dim>``, e.g. ``"litellm:openai/text-embedding-3-small:1536"``."""
        return f"litellm:{self.model}:{self._dim}"

    @property
    def dim(self) -> int:
        """Length of every vector, as given."""
        return self._dim

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` in requests of ``batch_size``; faults raise ``ProviderError`` subclasses."""
        litellm = import_litellm()
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])

            async def attempt(chunk: list[str] = chunk) -> Any:
                try:
                    return await litellm.aembedding(model=self.model, input=chunk, **self.params)
                except Exception as exc:
                    raise translate_error(self.model, exc) from exc

            response = await call_with_retries(
                attempt, policy=self.retry, limiter=self._limiter, request_timeout=None, deadline=None,
                model=self.model,
            )  # fmt: skip
            data = sorted(response.data, key=lambda item: _get(item, "index"))
            if len(data) != len(chunk):
                raise ProviderError(f"{self.model}: {len(data)} embeddings for {len(chunk)} texts")
            rows.extend(_get(item, "embedding") for item in data)
        matrix = (
            np.asarray(rows, dtype=np.float32).reshape(len(rows), -1) if rows else np.empty((0, self._dim))
        )
        if matrix.shape[1] != self._dim:
            raise ProviderError(
                f"{self.model}: vectors of length {matrix.shape[1]}, expected dim={self._dim}"
            )
        return normalize_rows(matrix)

    def __repr__(self) -> str:
        return f"LiteLLMEmbedder({self.model!r}, dim={self._dim})"


def _get(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        return cast(dict[str, Any], item)[key]
    return getattr(item, key)
