"""Conformance checks that any third-party implementation of a protocol can run in its own tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import anyio

from dreamgym_sdk.env import Env, TaskLike
from dreamgym_sdk.errors import ConformanceError, EnvClosedError, EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse, Provider, Usage
from dreamgym_sdk.types import StepResult

__all__ = ["check_env", "check_provider"]


def _fail(message: str, check: str = "check_env") -> ConformanceError:
    return ConformanceError(f"{check}: {message}")


async def check_env(
    env: Env,
    *,
    task: TaskLike | None = None,
    actions: Sequence[str] = ("look",),
    max_steps: int = 100,
    seed: int | None = 0,
    check_determinism: bool = True,
    fresh_env: Env | None = None,
) -> None:
    """Check that ``env`` follows the :class:`~dreamgym_sdk.Env` protocol; raise ConformanceError if not.

    It verifies: ``step`` before ``reset`` raises :class:`ResetNeededError`; ``reset`` returns
    ``(str, dict)``; ``step`` returns a :class:`StepResult` with a finite float reward, boolean
    ``terminated``/``truncated`` and a dict ``info``, unpackable as a gymnasium 5-tuple; the episode ends
    within ``max_steps`` steps (actions are cycled); ``step`` after the end raises
    :class:`EpisodeFinishedError`; two resets with the same seed give the same observation (unless
    ``check_determinism=False``); ``close`` is idempotent and later calls raise :class:`EnvClosedError`.

    Args:
        env: a fresh, never-reset environment.
        task: what to pass to ``reset(task=...)``.
        actions: actions to play, cycled until the episode ends.
        max_steps: the episode must end within this many steps.
        seed: the seed for ``reset``.
        check_determinism: compare two resets with the same seed.
        fresh_env: an unused env of the same kind for the step-before-reset check; defaults to ``env``.
    """
    if not actions:
        raise ValueError("check_env needs at least one action")
    for name in ("reset", "step", "close"):
        if not callable(getattr(env, name, None)):
            raise _fail(f"missing method {name}()")

    probe = fresh_env if fresh_env is not None else env
    try:
        await probe.step(actions[0])
    except ResetNeededError:
        pass
    except Exception as exc:
        raise _fail(f"step() before reset() raised {type(exc).__name__}, expected ResetNeededError") from exc
    else:
        raise _fail("step() before reset() did not raise ResetNeededError")

    reset = await env.reset(task=task, seed=seed)
    _check_reset(reset)
    first_obs = reset[0]

    result: StepResult | None = None
    for i in range(max_steps):
        result = await env.step(actions[i % len(actions)])
        _check_step(result, i)
        if result.terminated or result.truncated:
            break
    else:
        raise _fail(f"the episode did not end within {max_steps} steps")

    try:
        await env.step(actions[0])
    except EpisodeFinishedError:
        pass
    except Exception as exc:
        raise _fail(
            f"step() after the end raised {type(exc).__name__}, expected EpisodeFinishedError"
        ) from exc
    else:
        raise _fail("step() after the episode ended did not raise EpisodeFinishedError (no silent reset)")

    if check_determinism:
        again = await env.reset(task=task, seed=seed)
        _check_reset(again)
        if again[0] != first_obs:
            raise _fail("two reset() calls with the same seed gave different observations")

    await env.close()
    await env.close()  # idempotent
    try:
        await env.step(actions[0])
    except EnvClosedError:
        pass
    except Exception as exc:
        raise _fail(f"step() after close() raised {type(exc).__name__}, expected EnvClosedError") from exc
    else:
        raise _fail("step() after close() did not raise EnvClosedError")


def _check_reset(value: Any) -> None:
    if not isinstance(value, tuple) or len(cast(tuple[Any, ...], value)) != 2:
        raise _fail(f"reset() must return (observation, info), got {type(cast(object, value)).__name__}")
    obs, info = cast(tuple[Any, Any], value)
    if not isinstance(obs, str):
        raise _fail(f"reset() observation must be str, got {type(obs).__name__}")  # pyright: ignore[reportUnknownArgumentType]
    if not isinstance(info, dict):
        raise _fail(f"reset() info must be dict, got {type(info).__name__}")  # pyright: ignore[reportUnknownArgumentType]


def _check_step(result: Any, index: int) -> None:
    where = f"step {index}"
    if not isinstance(result, StepResult):
        raise _fail(f"{where}: step() must return StepResult, got {type(result).__name__}")
    if not isinstance(result.observation, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise _fail(f"{where}: observation must be str")
    if isinstance(result.reward, bool) or not isinstance(result.reward, int | float):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise _fail(f"{where}: reward must be a number, got {type(result.reward).__name__}")
    if not math.isfinite(result.reward):
        raise _fail(f"{where}: reward must be finite, got {result.reward}")
    for flag in ("terminated", "truncated"):
        if not isinstance(getattr(result, flag), bool):
            raise _fail(f"{where}: {flag} must be bool")
    if not isinstance(result.info, dict):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise _fail(f"{where}: info must be dict")
    if len(tuple(result)) != 5:
        raise _fail(f"{where}: StepResult must unpack to 5 values")


async def check_provider(
    provider: Provider,
    *,
    request: ChatRequest | None = None,
    concurrency: int = 4,
    check_determinism: bool = False,
) -> None:
    """Check that ``provider`` follows the :class:`~dreamgym_sdk.providers.Provider` protocol; raise
    ConformanceError if not.

    It verifies: ``model`` is a non-empty string; ``complete`` returns a :class:`ChatResponse` (text and
    model strings, non-negative token counts, a cost that is ``None`` or non-negative, a non-negative
    latency); asked for log-probabilities, the answer's token ids and log-probabilities (when given) are
    as many and each log-probability is at most 0; ``concurrency`` calls in flight at once all answer;
    a call cancelled in flight leaves the provider usable; with ``check_determinism``, two identical
    seeded requests at temperature 0 give the same text (hosted APIs may not promise that); ``aclose``
    is idempotent.

    Args:
        provider: the provider under test (it is closed at the end).
        request: what to ask; defaults to a short seeded question at temperature 0.
        concurrency: calls sent at once.
        check_determinism: compare the answers to two identical requests.
    """
    request = request or ChatRequest.of(None, "Say hello.", temperature=0.0, max_tokens=16, seed=0)
    for name in ("complete", "aclose"):
        if not callable(getattr(provider, name, None)):
            raise _fail(f"missing method {name}()", "check_provider")
    if not isinstance(getattr(provider, "model", None), str) or not provider.model:
        raise _fail("model must be a non-empty string", "check_provider")

    first = await _complete(provider, request, "a call")

    answers: list[ChatResponse] = []

    async def one(index: int) -> None:
        answers.append(await _complete(provider, request, f"call {index} of {concurrency} at once"))

    async with anyio.create_task_group() as tg:
        for index in range(concurrency):
            tg.start_soon(one, index)
    if len(answers) != concurrency:
        raise _fail(f"{concurrency} calls at once gave {len(answers)} answers", "check_provider")

    with anyio.move_on_after(0.05):  # abandoned in flight (unless it answers sooner)
        await provider.complete(request)
    await _complete(provider, request, "a call after a cancelled one")

    if check_determinism:
        again = await _complete(provider, request, "a repeated call")
        if again.text != first.text:
            raise _fail(
                f"two identical requests gave different answers: {first.text[:80]!r} vs {again.text[:80]!r}",
                "check_provider",
            )

    await provider.aclose()
    await provider.aclose()  # idempotent


async def _complete(provider: Provider, request: ChatRequest, what: str) -> ChatResponse:
    response: Any = await provider.complete(request)
    check = "check_provider"
    if not isinstance(response, ChatResponse):
        raise _fail(f"{what}: complete() must return ChatResponse, got {type(response).__name__}", check)
    if not isinstance(response.text, str) or not isinstance(response.model, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise _fail(f"{what}: text and model must be strings", check)
    usage: Usage = response.usage
    if usage.prompt_tokens < 0 or usage.completion_tokens < 0:
        raise _fail(f"{what}: negative token counts {usage}", check)
    if usage.cost_usd is not None and not usage.cost_usd >= 0:
        raise _fail(f"{what}: cost must be None or non-negative, got {usage.cost_usd}", check)
    if not response.latency_s >= 0:
        raise _fail(f"{what}: latency must be non-negative, got {response.latency_s}", check)
    if request.logprobs and response.token_ids is not None and response.logprobs is not None:
        tokens, logprobs = len(response.token_ids), len(response.logprobs)
        if tokens != logprobs:
            raise _fail(f"{what}: {tokens} answer tokens, {logprobs} log-probabilities", check)
        if any(not lp <= 0 for lp in response.logprobs):
            raise _fail(f"{what}: a log-probability above 0", check)
    return response
