"""Retries with backoff, full jitter and ``Retry-After``, under per-attempt and per-call deadlines.

Backends raise :class:`Retryable` around a typed :class:`~dreamgym_sdk.ProviderError` for a transient
fault and the plain typed error for a permanent one; :func:`call_with_retries` does the rest.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from dreamgym_sdk.errors import (
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
)
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.providers.config import RetryPolicy

__all__ = ["Retryable", "call_with_retries", "error_for_status", "exception_chain", "parse_retry_after"]

T = TypeVar("T")
_log = get_logger("dreamgym_sdk.providers")
_RNG = random.Random()
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class Retryable(Exception):
    """Wraps a transient :class:`ProviderError`; carries the server's ``Retry-After`` in seconds."""

    def __init__(self, error: ProviderError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first (bounded, cycle-safe)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 16 and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/invalid."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    status: int, message: str, *, retry_after: float | None = None
) -> Retryable | ProviderError:
    """The typed error for an HTTP status, wrapped in :class:`Retryable` when the status is transient."""
    error = RateLimitError(message) if status == 429 else ProviderStatusError(message, status_code=status)
    if status in _RETRY_STATUSES or status >= 500:
        return Retryable(error, retry_after)
    return error


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    limiter: anyio.Semaphore | anyio.CapacityLimiter,
    request_timeout: float | None,
    deadline: float | None,
    model: str,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, retrying :class:`Retryable` faults as ``policy`` says.

    Each attempt holds a slot of ``limiter`` (released during backoff waits) and may take
    ``request_timeout`` seconds from when it got the slot; the whole call, slot waits and backoff
    included, may take ``deadline`` seconds.

    Raises:
        ProviderTimeoutError: an attempt or the whole call ran out of time (after retries, for attempts).
        ProviderError: the typed error of the last attempt, with the original exception as ``__cause__``.
    """
    if deadline is None:  # the common case: no extra cancel scope on the hot path
        return await _attempts(attempt, policy, limiter, request_timeout, math.inf, model, rng or _RNG)
    with anyio.move_on_after(deadline) as scope:
        return await _attempts(attempt, policy, limiter, request_timeout, scope.deadline, model, rng or _RNG)
    raise ProviderTimeoutError(f"{model}: call exceeded its deadline of {deadline} s")


async def _attempts(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    limiter: anyio.Semaphore | anyio.CapacityLimiter,
    request_timeout: float | None,
    give_up_at: float,
    model: str,
    rng: random.Random,
) -> T:
    last: Retryable | None = None
    attempts = 0
    for number in range(1, policy.max_attempts + 1):
        if last is not None:
            wait = _wait_before(number - 1, last, policy, rng)
            if wait is None or anyio.current_time() + wait > give_up_at:
                break  # Retry-After beyond what we may wait: fail now rather than time out later
            _log.warning(
                "provider.retry",
                model=model,
                attempt=number,
                delay_s=round(wait, 4),
                error=type(last.error).__name__,
                status=429
                if isinstance(last.error, RateLimitError)
                else getattr(last.error, "status_code", None),
                reason=str(last.error)[:200],
            )
            await anyio.sleep(wait)
        attempts = number
        try:
            async with limiter:
                if request_timeout is None:
                    return await attempt()
                with anyio.move_on_after(request_timeout) as attempt_scope:
                    return await attempt()
                assert attempt_scope.cancelled_caught
                last = Retryable(ProviderTimeoutError(f"{model}: no answer within {request_timeout} s"))
        except Retryable as fault:
            last = fault
    assert last is not None
    _log.warning("provider.failed", model=model, error=type(last.error).__name__, attempts=attempts)
    raise last.error


def _wait_before(retry: int, fault: Retryable, policy: RetryPolicy, rng: random.Random) -> float | None:
    """Seconds to wait before retry ``retry``; ``None`` when the server asks for more than we honour."""
    wait = rng.uniform(0.0, policy.backoff_bound(retry))
    if policy.respect_retry_after and fault.retry_after is not None:
        if fault.retry_after > policy.max_retry_after:
            return None
        wait = max(wait, fault.retry_after)
    return wait
