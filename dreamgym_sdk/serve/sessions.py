"""Sessions: one environment each, owned by the identity that created it, closed when idle.

A session is found only by its owner: any other identity gets ``session_not_found``, exactly as for an
id that never existed, so ids cannot be probed. Closed and expired sessions are remembered (boundedly)
so their owner gets ``session_closed`` rather than a bare 404.
"""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from dreamgym_sdk.env import Env
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.serve.metrics import Metrics
from dreamgym_sdk.serve.protocol import WireError
from dreamgym_sdk.types import Task, new_id

__all__ = ["EnvFactory", "Session", "SessionStore"]

EnvFactory = Callable[[], Env | Awaitable[Env]]
"""Makes the environment of a new session (sync or async); shared components live in its closure."""

_log = get_logger("dreamgym_sdk.serve.sessions")
_CLOSE_BOUND = 10.0  # seconds an environment's close() may take before it is abandoned
_TOMBSTONES = 10_000


@dataclass(eq=False, slots=True)
class Session:
    """One client's environment and the bookkeeping the server reports in ``state``."""

    id: str
    owner: str
    env: Env
    lock: anyio.Lock = field(default_factory=lambda: anyio.Lock(fast_acquire=True))
    """Serialises the session's operations (HTTP clients may send them concurrently)."""
    created_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    busy: bool = False
    """An operation is running; the reaper leaves busy sessions alone."""
    closed: str | None = None
    """``"closed"`` or ``"expired"`` once the session is gone."""
    needs_reset: bool = True
    """No usable episode: before the first reset, or after a reset that failed."""
    last_request_id: str | None = None
    last_reply: dict[str, object] | None = None
    """The answer to ``last_request_id``, replayed when a client retries that request."""
    episode_id: str | None = None
    step_count: int = 0
    done: bool = False
    task: Task | None = None
    observation: str | None = None
    total_reward: float = 0.0
    episodes: int = 0


class SessionStore:
    """The live sessions of a server, with capacity limits and idle expiry.

    Args:
        factory: makes the environment of each new session.
        metrics: updated on every create, close and expiry.
        max_sessions: open sessions allowed in total.
        max_sessions_per_owner: open sessions allowed per identity (``None``: no limit).
        idle_timeout: seconds without activity after which :meth:`expire_idle` closes a session.
    """

    def __init__(
        self,
        factory: EnvFactory,
        metrics: Metrics,
        *,
        max_sessions: int,
        max_sessions_per_owner: int | None,
        idle_timeout: float,
    ) -> None:
        self.factory = factory
        self.metrics = metrics
        self.max_sessions = max_sessions
        self.max_sessions_per_owner = max_sessions_per_owner
        self.idle_timeout = idle_timeout
        self._live: dict[str, Session] = {}
        self._per_owner: dict[str, int] = {}
        self._gone: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    async def create(self, owner: str) -> Session:
        """A new session for ``owner`` with a fresh environment.

        Raises:
            WireError: ``capacity_reached`` or ``too_many_sessions``; ``env_error`` if the factory failed.
        """
        if len(self._live) >= self.max_sessions:
            raise WireError(
                "capacity_reached", f"the server holds its maximum of {self.max_sessions} sessions"
            )
        owned = self._per_owner.get(owner, 0)
        if self.max_sessions_per_owner is not None and owned >= self.max_sessions_per_owner:
            raise WireError(
                "too_many_sessions",
                f"this token already holds {owned} open sessions (the limit); close some first",
            )
        self._per_owner[owner] = owned + 1  # reserve before awaiting the factory
        try:
            made = self.factory()
            env: Env = await made if inspect.isawaitable(made) else made
        except Exception as exc:
            self._release(owner)
            _log.warning("env factory failed", error=type(exc).__name__)
            raise WireError("env_error", f"could not create the environment ({type(exc).__name__})") from exc
        except BaseException:
            self._release(owner)
            raise
        session = Session(id=new_id(), owner=owner, env=env)
        self._live[session.id] = session
        self.metrics.sessions_created += 1
        self.metrics.sessions_active = len(self._live)
        _log.debug("session created", session_id=session.id, owner=owner)
        return session

    def get(self, session_id: str, owner: str) -> Session:
        """The live session ``session_id`` if ``owner`` owns it.

        Raises:
            WireError: ``session_not_found`` (unknown, or another identity's), or ``session_closed``.
        """
        session = self._live.get(session_id)
        if session is not None and session.owner == owner:
            return session
        gone = self._gone.get(session_id)
        if session is None and gone is not None and gone[0] == owner:
            raise WireError("session_closed", f"session {session_id} was {gone[1]}", reason=gone[1])
        raise WireError("session_not_found", "no such session")

    def detach(self, session: Session, reason: str) -> bool:
        """Mark ``session`` gone and forget it (synchronously); ``False`` if it already was."""
        if session.closed is not None:
            return False
        session.closed = reason
        del self._live[session.id]
        self._release(session.owner)
        self._gone[session.id] = (session.owner, reason)
        if len(self._gone) > _TOMBSTONES:
            self._gone.popitem(last=False)
        self.metrics.sessions_active = len(self._live)
        if reason == "expired":
            self.metrics.sessions_expired += 1
        else:
            self.metrics.sessions_closed += 1
        _log.debug(f"session {reason}", session_id=session.id, owner=session.owner)
        return True

    async def close(self, session: Session, reason: str = "closed") -> None:
        """Close ``session`` and its environment (shielded from cancellation, bounded in time)."""
        if self.detach(session, reason):
            await self.close_env(session)

    async def close_env(self, session: Session) -> None:
        """Close a detached session's environment; failures are logged, never raised."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_BOUND):
            try:
                await session.env.close()
            except Exception as exc:
                _log.warning("env close failed", session_id=session.id, error=type(exc).__name__)

    async def expire_idle(self) -> int:
        """Close every session idle for longer than ``idle_timeout``; returns how many."""
        deadline = time.monotonic() - self.idle_timeout
        stale = [
            s for s in self._live.values() if s.last_active < deadline and not s.busy and not s.lock.locked()
        ]
        for session in stale:  # detach them all before the first await: no operation can start on them
            self.detach(session, "expired")
        for session in stale:
            await self.close_env(session)
        return len(stale)

    async def close_all(self) -> None:
        """Close every session (at shutdown)."""
        sessions = list(self._live.values())
        for session in sessions:
            self.detach(session, "closed")
        for session in sessions:
            await self.close_env(session)

    def _release(self, owner: str) -> None:
        left = self._per_owner.get(owner, 1) - 1
        if left > 0:
            self._per_owner[owner] = left
        else:
            self._per_owner.pop(owner, None)
