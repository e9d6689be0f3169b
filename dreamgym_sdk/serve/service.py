"""The server's operations on sessions, independent of the transport (HTTP or WebSocket).

Every operation runs under the session's lock, records metrics, turns environment exceptions into
:class:`~dreamgym_sdk.serve.protocol.WireError` (never a traceback on the wire) and stores its answer so
that a retried request with the same ``request_id`` is answered again instead of executed twice.

Transports bracket each request with :meth:`EnvService.begin` / :meth:`EnvService.end`, passing the cancel
scope the request runs in (its own for HTTP, its connection's for WebSocket), so that a graceful shutdown
(:meth:`EnvService.drain`) refuses new work, waits for the work in flight (answer included) and cancels
only what outlives the grace period.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Sequence
from typing import Any

import anyio

from dreamgym_sdk.errors import DreamGymError, EnvClosedError, EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.serve.metrics import Metrics
from dreamgym_sdk.serve.protocol import ResetRequest, StepRequest, WireError
from dreamgym_sdk.serve.sessions import Session, SessionStore
from dreamgym_sdk.types import Action, Task

__all__ = ["EnvService"]

_log = get_logger("dreamgym_sdk.serve")
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")
_MAX_MESSAGE = 500


class EnvService:
    """Reset, step, state and close on sessions, with draining for graceful shutdown.

    Args:
        store: the session store.
        metrics: where counts and latencies go.
        environment: the environment name given to tasks sent as plain instructions.
        secrets: strings (tokens, API keys) scrubbed from every message the server sends or logs.
    """

    def __init__(
        self, store: SessionStore, metrics: Metrics, *, environment: str, secrets: Sequence[str] = ()
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.environment = environment
        self._secrets = [s for s in secrets if s]
        self.draining = False
        self._busy = 0
        self._scopes: set[anyio.CancelScope] = set()
        self._idle: anyio.Event | None = None  # created by drain(): events need a running event loop

    # -- request bracketing and graceful shutdown ------------------------------------------------------

    def begin(self, scope: anyio.CancelScope) -> None:
        """Count a request as in flight until :meth:`end`; ``scope`` (the request's, or its WebSocket
        connection's) is cancelled if a shutdown outlives its grace period meanwhile.

        Raises:
            WireError: ``shutting_down`` once draining started.
        """
        if self.draining:
            raise WireError("shutting_down", "the server is shutting down")
        self._busy += 1
        self._scopes.add(scope)

    def end(self, scope: anyio.CancelScope) -> None:
        """The request counted by :meth:`begin` was answered (or abandoned)."""
        self._busy -= 1
        self._scopes.discard(scope)
        if self._busy == 0 and self._idle is not None:
            self._idle.set()

    @property
    def inflight(self) -> int:
        """Requests being processed now."""
        return self._busy

    async def drain(self, grace: float) -> None:
        """Refuse new requests, let those in flight finish (answers included) for up to ``grace``
        seconds, then cancel the rest and wait for them to unwind."""
        idle = self._idle = anyio.Event()
        self.draining = True
        if self._busy:
            with anyio.move_on_after(grace):
                await idle.wait()
        if self._busy:
            _log.warning("cancelling requests still running after the grace period", count=self._busy)
            for scope in list(self._scopes):
                scope.cancel()
            with anyio.move_on_after(5):
                await idle.wait()

    # -- operations ------------------------------------------------------------------------------------

    async def create(self, owner: str) -> Session:
        """A new session for ``owner``."""
        return await self.store.create(owner)

    async def reset(self, session: Session, request: ResetRequest) -> dict[str, Any]:
        """Start an episode in ``session``; the answer is an ``ObservationResponse`` dict."""
        rid = request.request_id
        async with session.lock:
            if session.closed is not None:
                raise _closed(session)
            if rid is not None and rid == session.last_request_id and session.last_reply is not None:
                return session.last_reply
            task = request.task
            if isinstance(task, str):
                task = Task(instruction=task, environment=self.environment)
            session.busy = True
            session.needs_reset = True
            started = time.perf_counter()
            try:
                obs, info = await session.env.reset(task=task, seed=request.seed, options=request.options)
            except Exception as exc:
                raise self._failure(exc, "reset", session) from None
            finally:
                session.busy = False
                session.last_active = time.monotonic()
            if not isinstance(obs, str) or not isinstance(info, dict):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise WireError(
                    "invalid_argument", "the environment did not start an episode from these arguments"
                )
            session.needs_reset = False
            info = dict(info)
            if task is not None:
                info.setdefault("task", task)
            episode_id = info.get("episode_id")
            session.episode_id = episode_id if isinstance(episode_id, str) else None
            session.step_count = 0
            session.done = False
            session.task = task
            session.observation = obs
            session.total_reward = 0.0
            session.episodes += 1
            reply: dict[str, Any] = {
                "observation": {"text": obs},
                "reward": None,
                "done": False,
                "terminated": False,
                "truncated": False,
                "metadata": info,
                "session_id": session.id,
                "request_id": rid,
            }
            session.last_request_id = rid
            session.last_reply = reply
            self.metrics.resets += 1
            self.metrics.latency["reset"].add(time.perf_counter() - started)
            return reply

    async def step(self, session: Session, request: StepRequest) -> dict[str, Any]:
        """Take one step in ``session``; the answer is an ``ObservationResponse`` dict."""
        rid = request.request_id
        async with session.lock:
            if session.closed is not None:
                raise _closed(session)
            if rid is not None and rid == session.last_request_id and session.last_reply is not None:
                return session.last_reply
            if session.needs_reset:
                raise WireError("reset_needed", "call reset before step")
            session.busy = True
            started = time.perf_counter()
            try:
                result = await session.env.step(Action(request.action, request.sample))
            except Exception as exc:
                raise self._failure(exc, "step", session) from None
            finally:
                session.busy = False
                session.last_active = time.monotonic()
            done = result.terminated or result.truncated
            session.step_count += 1
            session.done = done
            session.observation = result.observation
            session.total_reward += result.reward
            reply: dict[str, Any] = {
                "observation": {"text": result.observation},
                "reward": result.reward,
                "done": done,
                "terminated": result.terminated,
                "truncated": result.truncated,
                "metadata": result.info,
                "session_id": session.id,
                "request_id": rid,
            }
            session.last_request_id = rid
            session.last_reply = reply
            self.metrics.steps += 1
            self.metrics.latency["step"].add(time.perf_counter() - started)
            return reply

    def state(self, session: Session | None) -> dict[str, Any]:
        """A ``SessionState`` dict (an empty state for ``None``: a socket that has not reset yet)."""
        if session is None:
            return {"episode_id": None, "step_count": 0, "session_id": None, "done": False, "episodes": 0}
        if session.closed is not None:
            raise _closed(session)
        session.last_active = time.monotonic()
        return {
            "episode_id": session.episode_id,
            "step_count": session.step_count,
            "session_id": session.id,
            "done": session.done,
            "task": session.task,
            "observation": session.observation,
            "total_reward": session.total_reward,
            "episodes": session.episodes,
        }

    async def close(self, session: Session) -> None:
        """Close ``session`` after the operation running on it, if any; idempotent."""
        async with session.lock:
            await self.store.close(session, "closed")

    # -- errors ----------------------------------------------------------------------------------------

    def error(self, exc: WireError) -> dict[str, Any]:
        """The ``ErrorDetail`` dict for ``exc`` (counted in the metrics, secrets scrubbed)."""
        self.metrics.errors[exc.type] += 1
        exc.message = self.scrub(exc.message, limit=_MAX_MESSAGE)
        return exc.detail()

    def scrub(self, text: str, *, limit: int | None = None) -> str:
        """``text`` without any configured secret or anything shaped like a key (``sk-...``,
        ``Bearer ...``), cut to ``limit`` characters if given."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _SECRET_VALUE.sub("***", text)
        return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."

    def _failure(self, exc: Exception, op: str, session: Session) -> WireError:
        if isinstance(exc, WireError):
            return exc
        if isinstance(exc, ResetNeededError):
            return WireError("reset_needed", "call reset before step")
        if isinstance(exc, EpisodeFinishedError):
            return WireError("episode_finished", self.scrub(str(exc), limit=_MAX_MESSAGE))
        if isinstance(exc, EnvClosedError):
            return WireError("session_closed", "the environment is closed", reason="closed")
        if op == "reset" and isinstance(exc, ValueError | TypeError):
            return WireError("invalid_argument", self.scrub(str(exc), limit=_MAX_MESSAGE))
        if isinstance(exc, DreamGymError):
            _log.warning(
                "environment error",
                op=op,
                session_id=session.id,
                error=self.scrub(f"{type(exc).__name__}: {exc}", limit=2000),
            )
            return WireError("env_error", self.scrub(f"{type(exc).__name__}: {exc}", limit=_MAX_MESSAGE))
        _log.error(
            "environment failed unexpectedly",
            op=op,
            session_id=session.id,
            error=type(exc).__name__,
            trace=self.scrub("".join(traceback.format_exception(exc)))[-8000:],
        )
        return WireError("internal_error", f"the environment failed unexpectedly ({type(exc).__name__})")


def _closed(session: Session) -> WireError:
    reason = session.closed or "closed"
    return WireError("session_closed", f"session {session.id} was {reason}", reason=reason)
