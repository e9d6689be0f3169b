"""The retry loop on its own: backoff bounds, Retry-After parsing and limits, deadlines."""

from __future__ import annotations

import email.utils
import logging
import random
import time

import anyio
import pytest

from dreamgym_sdk.errors import (
    ProviderConnectionError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
)
from dreamgym_sdk.providers import RetryPolicy
from dreamgym_sdk.providers._retry import Retryable, call_with_retries, error_for_status, parse_retry_after


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 20 < (parse_retry_after(future) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_backoff_bound_grows_then_caps() -> None:
    policy = RetryPolicy(initial_backoff=0.5, multiplier=2, max_backoff=3)
    assert [policy.backoff_bound(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_error_for_status() -> None:
    assert isinstance(error_for_status(429, "x"), Retryable)
    assert isinstance(error_for_status(503, "x"), Retryable)
    permanent = error_for_status(404, "x")
    assert isinstance(permanent, ProviderStatusError) and permanent.status_code == 404


async def run(attempt: object, policy: RetryPolicy, **kwargs: object) -> object:
    return await call_with_retries(
        attempt,  # type: ignore[arg-type]
        policy=policy,
        limiter=anyio.CapacityLimiter(1),
        request_timeout=kwargs.pop("request_timeout", None),  # type: ignore[arg-type]
        deadline=kwargs.pop("deadline", None),  # type: ignore[arg-type]
        model="m",
        rng=random.Random(0),
    )


async def test_waits_are_jittered_within_bounds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dreamgym_sdk")
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise Retryable(ProviderConnectionError("down"))
        return "ok"

    policy = RetryPolicy(max_attempts=4, initial_backoff=0.01, multiplier=2)
    assert await run(flaky, policy) == "ok"
    delays = [r.__dict__["delay_s"] for r in caplog.records if r.getMessage() == "provider.retry"]
    assert len(delays) == 3
    assert all(0 <= d <= policy.backoff_bound(n + 1) for n, d in enumerate(delays))


async def test_retry_after_above_the_cap_stops_retrying() -> None:
    calls = 0

    async def limited() -> str:
        nonlocal calls
        calls += 1
        raise Retryable(RateLimitError("slow down"), retry_after=120)

    with pytest.raises(RateLimitError):
        await run(limited, RetryPolicy(max_attempts=5, max_retry_after=60))
    assert calls == 1


async def test_permanent_errors_are_not_retried() -> None:
    calls = 0

    async def bad() -> str:
        nonlocal calls
        calls += 1
        raise ProviderStatusError("bad request", status_code=400)

    with pytest.raises(ProviderStatusError):
        await run(bad, RetryPolicy(max_attempts=5))
    assert calls == 1


async def test_attempt_timeout_then_call_deadline() -> None:
    async def hang() -> str:
        await anyio.sleep_forever()
        raise AssertionError

    with pytest.raises(ProviderTimeoutError, match="no answer"):
        await run(hang, RetryPolicy(max_attempts=2, initial_backoff=0), request_timeout=0.05)
    with pytest.raises(ProviderTimeoutError, match="deadline"):
        await run(hang, RetryPolicy(max_attempts=2), deadline=0.05)


async def test_outer_cancellation_is_not_swallowed() -> None:
    async def hang() -> str:
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.move_on_after(0.05) as scope:
        await run(hang, RetryPolicy(max_attempts=3), request_timeout=10)
    assert scope.cancelled_caught
