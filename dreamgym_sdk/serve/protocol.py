"""The wire protocol shared by the server and the client: request and response models, error names.

The WebSocket frames follow OpenEnv's env-server envelope, ``{"type": ..., "data": {...}}``:

- client → server: ``reset`` (data: :class:`ResetRequest`), ``step`` (data: :class:`StepRequest`),
  ``state`` and ``close`` (no data);
- server → client: ``observation`` (data: :class:`ObservationResponse`), ``state`` (data:
  :class:`SessionState`) and ``error`` (data: :class:`ErrorDetail`).

The HTTP endpoints take and return the same ``data`` objects; errors are ``{"error": ErrorDetail}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pydantic_core import to_json

from dreamgym_sdk.types import Sample, Task

__all__ = [
    "ERROR_STATUS",
    "CloseMessage",
    "ErrorBody",
    "ErrorDetail",
    "HealthResponse",
    "IncomingMessage",
    "ObservationResponse",
    "ObservationText",
    "ResetMessage",
    "ResetRequest",
    "SessionCreated",
    "SessionState",
    "StateMessage",
    "StepMessage",
    "StepRequest",
    "WireError",
    "dumps",
    "incoming_message",
]

ERROR_STATUS: dict[str, int] = {
    "invalid_json": 400,
    "unauthorized": 401,
    "not_found": 404,
    "session_not_found": 404,
    "method_not_allowed": 405,
    "reset_needed": 409,
    "episode_finished": 409,
    "session_closed": 410,
    "payload_too_large": 413,
    "validation_error": 422,
    "invalid_argument": 422,
    "rate_limited": 429,
    "too_many_sessions": 429,
    "internal_error": 500,
    "env_error": 502,
    "shutting_down": 503,
    "capacity_reached": 503,
}
"""The HTTP status of every error type the server reports."""

RequestId = Annotated[str, Field(min_length=1, max_length=128)]
Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ResetRequest(_Request):
    """Start a new episode in the session (the body of ``POST /sessions/{id}/reset``)."""

    task: Task | str | None = None
    """The task, or a plain instruction string (recorded with the server's environment name)."""
    seed: Seed | None = None
    """Sampling seed for reproducible episodes."""
    options: dict[str, Any] | None = None
    """Environment-specific options, e.g. ``{"initial_state": "..."}`` (a string) for a DreamEnv."""
    episode_id: str | None = Field(default=None, max_length=255)
    """Accepted for OpenEnv compatibility and ignored: the environment names its episodes."""
    request_id: RequestId | None = None
    """Idempotency key: a retried request with the same id gets the stored answer, not a second reset."""

    @field_validator("options")
    @classmethod
    def _initial_state_is_text(cls, options: dict[str, Any] | None) -> dict[str, Any] | None:
        if options is not None and not isinstance(options.get("initial_state", ""), str | None):
            raise ValueError("options.initial_state must be a string")
        return options


class StepRequest(_Request):
    """Take one step (the body of ``POST /sessions/{id}/step``)."""

    action: str
    """The agent's action."""
    sample: Sample | None = None
    """How the agent's policy sampled the action (token ids, log-probabilities, policy version), when it
    recorded it: stored on the transition, so a trainer on the server's bus can learn from the episode."""
    metadata: dict[str, Any] | None = None
    """Accepted for OpenEnv compatibility (its actions carry ``metadata``) and ignored."""
    request_id: RequestId | None = None
    """Idempotency key: a retried request with the same id gets the stored answer, not a second step."""


class ResetMessage(_Request):
    """WebSocket frame ``{"type": "reset", "data": {...}}``."""

    type: Literal["reset"]
    data: ResetRequest = Field(default_factory=ResetRequest)


class StepMessage(_Request):
    """WebSocket frame ``{"type": "step", "data": {"action": "..."}}``."""

    type: Literal["step"]
    data: StepRequest


class StateMessage(_Request):
    """WebSocket frame ``{"type": "state"}``."""

    type: Literal["state"]
    data: dict[str, Any] | None = None


class CloseMessage(_Request):
    """WebSocket frame ``{"type": "close"}``: close the session and the socket."""

    type: Literal["close"]
    data: dict[str, Any] | None = None


IncomingMessage = Annotated[
    ResetMessage | StepMessage | StateMessage | CloseMessage, Field(discriminator="type")
]
"""Any frame a client may send."""

incoming_message: TypeAdapter[ResetMessage | StepMessage | StateMessage | CloseMessage] = TypeAdapter(
    IncomingMessage
)
"""Validates a raw frame (``incoming_message.validate_json(text)``)."""


class ObservationText(BaseModel):
    """The observation object (OpenEnv observations are objects; ours holds the text)."""

    text: str


class ObservationResponse(BaseModel):
    """What reset and step return (the ``data`` of an ``observation`` frame)."""

    observation: ObservationText
    reward: float | None = None
    """The step's reward; ``null`` after a reset."""
    done: bool = False
    """``terminated or truncated`` (OpenEnv's single flag)."""
    terminated: bool = False
    """The task ended (success or failure)."""
    truncated: bool = False
    """A limit cut the episode short."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """The environment's ``info`` dict, JSON-serialised (``provenance`` becomes an object)."""
    session_id: str
    """The session the request ran in (reconnecting clients reattach with it)."""
    request_id: str | None = None
    """The request's idempotency key, echoed."""


class SessionState(BaseModel):
    """A session's bookkeeping (the ``data`` of a ``state`` frame; OpenEnv's ``State`` fields first)."""

    episode_id: str | None = None
    step_count: int = 0
    """Steps taken in the current episode."""
    session_id: str | None = None
    """``null`` on a WebSocket that has not reset yet."""
    done: bool = False
    task: Task | None = None
    observation: str | None = None
    """The latest observation."""
    total_reward: float = 0.0
    """Sum of the current episode's rewards."""
    episodes: int = 0
    """Episodes started in this session."""


class SessionCreated(BaseModel):
    """Answer of ``POST /sessions``."""

    session_id: str


class HealthResponse(BaseModel):
    """Answer of ``GET /health``: ``healthy`` (200) or ``draining`` (503, shutting down)."""

    status: Literal["healthy", "draining"]
    sessions: int
    version: str


class ErrorDetail(BaseModel):
    """A machine-readable error: the body's ``error`` object, or an ``error`` frame's ``data``."""

    type: str
    """Stable error name, e.g. ``episode_finished`` (see :data:`ERROR_STATUS`)."""
    code: str
    """The type in upper case (OpenEnv's ``code`` field)."""
    status: int
    """The HTTP status."""
    message: str
    """What went wrong, for humans."""
    retry_after: float | None = None
    """For ``rate_limited``: seconds until a request may succeed."""
    reason: str | None = None
    """For ``session_closed``: ``closed`` or ``expired``."""
    details: list[dict[str, Any]] | None = None
    """For ``validation_error``: where and what (``loc``, ``msg``, ``type``); never the input."""


class ErrorBody(BaseModel):
    """The body of every HTTP error response."""

    error: ErrorDetail


class WireError(Exception):
    """Raised inside the server to answer with an :class:`ErrorDetail`; never leaves the server."""

    def __init__(
        self,
        type: str,
        message: str,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.type = type
        self.status = ERROR_STATUS.get(type, 400)
        self.message = message
        self.retry_after = retry_after
        self.reason = reason
        self.details = details
        super().__init__(message)

    def detail(self) -> dict[str, Any]:
        """The :class:`ErrorDetail` as a dict, without the fields that do not apply."""
        out: dict[str, Any] = {
            "type": self.type,
            "code": self.type.upper(),
            "status": self.status,
            "message": self.message,
        }
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.reason is not None:
            out["reason"] = self.reason
        if self.details is not None:
            out["details"] = self.details
        return out


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; pydantic models and dataclasses inside are serialised, anything else
    unknown becomes its ``str``."""
    return to_json(value, fallback=str)
