"""Provider configuration as validated, immutable values: connection, limits, retries, cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ProviderConfig", "RetryPolicy", "backoff_bound"]


def backoff_bound(retry: int, *, initial: float, maximum: float, multiplier: float = 2.0) -> float:
    """Upper bound of the jittered wait before retry number ``retry`` (1-based): ``initial`` growing by
    ``multiplier`` per retry, at most ``maximum``. The wait itself is drawn uniformly below it ("full
    jitter"), for provider calls (:class:`RetryPolicy`) and the serve client's reconnects alike."""
    return min(maximum, initial * multiplier ** (retry - 1))


class RetryPolicy(BaseModel):
    """How transient faults (HTTP 429 and 5xx, timeouts, dropped connections, broken bodies) are retried.

    The wait before retry ``n`` (1-based) is drawn uniformly from ``[0, min(max_backoff,
    initial_backoff * multiplier ** (n - 1))]`` ("full jitter"). When the server sends ``Retry-After``,
    the wait is at least that long (capped at ``max_retry_after``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=4, ge=1)
    """Attempts in total, the first one included; ``1`` disables retries."""
    initial_backoff: float = Field(default=0.5, ge=0)
    """Upper bound of the first wait, in seconds."""
    multiplier: float = Field(default=2.0, ge=1)
    """Growth factor of the upper bound per attempt."""
    max_backoff: float = Field(default=30.0, ge=0)
    """Largest upper bound of a wait, in seconds."""
    respect_retry_after: bool = True
    """Honour the server's ``Retry-After`` header."""
    max_retry_after: float = Field(default=60.0, ge=0)
    """Longest ``Retry-After`` honoured; a longer one ends the retries at once."""

    def backoff_bound(self, retry: int) -> float:
        """Upper bound of the jittered wait before retry number ``retry`` (1-based)."""
        return backoff_bound(
            retry, initial=self.initial_backoff, maximum=self.max_backoff, multiplier=self.multiplier
        )


class ProviderConfig(BaseModel):
    """Everything a provider needs besides the model string; all fields have offline-safe defaults.

    ``get_provider(model, config, **overrides)`` accepts any field as a keyword override.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_base: str | None = None
    """Base URL of an OpenAI-compatible server, e.g. ``http://localhost:8000/v1``."""
    api_key: SecretStr | None = None
    """API key; when ``None`` the backend reads its usual environment variable. Never logged."""
    max_concurrency: int = Field(default=64, ge=1)
    """Calls in flight at once for this provider; more wait for a slot."""
    request_timeout: float | None = Field(default=60.0, gt=0)
    """Seconds one attempt may take once it has a slot; a timed-out attempt is retried."""
    deadline: float | None = Field(default=None, gt=0)
    """Seconds a whole call may take: waiting for a slot, all attempts and backoff waits."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """Retry behaviour for transient faults."""
    cache_dir: Path | None = None
    """Directory of the on-disk response cache; ``None`` disables caching."""
    extra_params: dict[str, Any] = Field(default_factory=dict)
    """Extra request parameters passed through to the backend (e.g. ``{"top_k": 20}`` for vLLM)."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Options of a local backend, e.g. ``{"device_map": "auto", "dtype": "bfloat16",
    "max_batch_size": 16}`` for ``hf:`` (see :class:`~dreamgym_sdk.providers.hf.HFOptions`)."""

    @model_validator(mode="after")
    def _check(self) -> ProviderConfig:
        if self.api_base is not None and not self.api_base.startswith(("http://", "https://")):
            raise ValueError(f"api_base must be an http(s) URL, got {self.api_base!r}")
        return self

    def key(self) -> str | None:
        """The API key in clear text, for the transport only."""
        return self.api_key.get_secret_value() if self.api_key is not None else None
