"""Errors of the environment server and its client, and their wire names.

Every error the server reports has a stable machine-readable ``type`` (the wire name), an HTTP status
and a message. Over HTTP it is the body ``{"error": {"type", "code", "status", "message"}}``; over the
WebSocket it is the frame ``{"type": "error", "data": {...same fields...}}``. The client raises the
matching exception below, or the core environment error for protocol misuse::

    DreamGymError
    ├── EnvError
    │   ├── ResetNeededError           reset_needed        409  step() before reset()
    │   ├── EpisodeFinishedError       episode_finished    409  step() after the episode ended
    │   └── EnvClosedError             (client side)            any call after close()
    │       └── SessionClosedError     session_closed      410  the session was closed or expired
    └── ServeError                                              the server or the wire failed
        ├── BadRequestError            invalid_json 400, validation_error 422, invalid_argument 422,
        │                              not_found 404, method_not_allowed 405
        ├── AuthenticationError        unauthorized        401  missing or wrong bearer token
        ├── SessionNotFoundError       session_not_found   404  unknown session, or another token's
        ├── PayloadTooLargeError       payload_too_large   413  request body or message over the limit
        ├── RateLimitedError           rate_limited 429, too_many_sessions 429
        ├── ServerUnavailableError     shutting_down 503, capacity_reached 503, or unreachable
        └── RemoteEnvError             env_error 502, internal_error 500: the served env failed
"""

from __future__ import annotations

from typing import Any

from dreamgym_sdk.errors import DreamGymError, EnvClosedError, EpisodeFinishedError, ResetNeededError

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RemoteEnvError",
    "ServeError",
    "ServerUnavailableError",
    "SessionClosedError",
    "SessionNotFoundError",
    "error_from_wire",
]


class ServeError(DreamGymError):
    """Raised when the environment server rejects a request or cannot be reached.

    Attributes:
        type: the wire name of the error (e.g. ``"rate_limited"``), or ``"connection"`` when the server
            could not be reached.
        status: the HTTP status the server used (0 when there was no answer).
    """

    def __init__(self, message: str, *, type: str = "error", status: int = 0) -> None:
        self.type = type
        self.status = status
        super().__init__(message)


class BadRequestError(ServeError):
    """Raised when the server rejects a request as malformed (bad JSON, wrong types, bad arguments)."""


class AuthenticationError(ServeError):
    """Raised when the bearer token is missing or wrong."""


class SessionNotFoundError(ServeError):
    """Raised when the session does not exist (or belongs to another token, which looks the same)."""


class PayloadTooLargeError(ServeError):
    """Raised when a request body or WebSocket message exceeds the server's size limit."""


class RateLimitedError(ServeError):
    """Raised when the token exceeded its request rate or its number of open sessions.

    Attributes:
        retry_after: seconds to wait before the next request may succeed, when the server said so.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "rate_limited",
        status: int = 429,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, type=type, status=status)


class ServerUnavailableError(ServeError, ConnectionError):
    """Raised when the server is shutting down, full, or cannot be reached after the reconnect attempts."""


class RemoteEnvError(ServeError):
    """Raised when the served environment itself failed (for example its experience model)."""


class SessionClosedError(EnvClosedError):
    """Raised when the session was closed, or expired after being idle, on the server.

    An :class:`~dreamgym_sdk.EnvClosedError`, so code written for local environments handles it.

    Attributes:
        type: ``"session_closed"``.
        reason: ``"closed"`` or ``"expired"``.
    """

    def __init__(self, message: str, *, reason: str = "closed") -> None:
        self.type = "session_closed"
        self.status = 410
        self.reason = reason
        super().__init__(message)


_BY_TYPE: dict[str, type[ServeError]] = {
    "invalid_json": BadRequestError,
    "validation_error": BadRequestError,
    "invalid_argument": BadRequestError,
    "not_found": BadRequestError,
    "method_not_allowed": BadRequestError,
    "unauthorized": AuthenticationError,
    "session_not_found": SessionNotFoundError,
    "payload_too_large": PayloadTooLargeError,
    "shutting_down": ServerUnavailableError,
    "capacity_reached": ServerUnavailableError,
    "env_error": RemoteEnvError,
    "internal_error": RemoteEnvError,
}


def error_from_wire(detail: dict[str, Any]) -> Exception:
    """The exception for an error body's ``error`` object (or a WebSocket error frame's ``data``)."""
    kind = str(detail.get("type", "error"))
    message = str(detail.get("message", "the server reported an error"))
    status = detail.get("status", 0)
    status = status if isinstance(status, int) else 0
    if kind == "reset_needed":
        return ResetNeededError(message)
    if kind == "episode_finished":
        return EpisodeFinishedError(message)
    if kind == "session_closed":
        return SessionClosedError(message, reason=str(detail.get("reason", "closed")))
    if kind in ("rate_limited", "too_many_sessions"):
        retry = detail.get("retry_after")
        return RateLimitedError(
            message,
            type=kind,
            status=status or 429,
            retry_after=float(retry) if isinstance(retry, int | float) else None,
        )
    return _BY_TYPE.get(kind, ServeError)(message, type=kind, status=status)
