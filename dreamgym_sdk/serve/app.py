"""The ASGI application: HTTP routes, the WebSocket endpoint, authentication, limits and error bodies.

Every failure becomes a 4xx (or, for a fault of the served environment, a 5xx) with the body
``{"error": {"type", "code", "status", "message"}}``; nothing reaches the client as a traceback, and no
message contains a token. This module imports FastAPI (the ``serve`` extra); the server imports it lazily.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route annotations at runtime, and
# some of them (the ``identity`` dependency) are local to create_app.
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

import anyio

from dreamgym_sdk._imports import require

require("fastapi", extra="serve", feature="dreamgym serve")  # before the imports below need it

from fastapi import Depends, FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from dreamgym_sdk._version import __version__
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.serve.auth import Authenticator, RateLimiter
from dreamgym_sdk.serve.metrics import Metrics
from dreamgym_sdk.serve.protocol import (
    ErrorBody,
    HealthResponse,
    ObservationResponse,
    ResetRequest,
    SessionCreated,
    SessionState,
    StepRequest,
    WireError,
    dumps,
    incoming_message,
)
from dreamgym_sdk.serve.service import EnvService
from dreamgym_sdk.serve.sessions import Session

__all__ = ["AppState", "create_app"]

_log = get_logger("dreamgym_sdk.serve")

_DESCRIPTION = """\
Many concurrent, isolated sessions of a DreamGym environment over shared components.

Authenticate with `Authorization: Bearer <token>`. A session belongs to the token that created it;
other tokens get 404. Errors are `{"error": {"type", "code", "status", "message"}}`.

The WebSocket endpoint `/ws` (not listed below) carries OpenEnv-style frames on one socket per client:
`{"type": "reset"|"step"|"state"|"close", "data": {...}}` answered by
`{"type": "observation"|"state"|"error", "data": {...}}`, with the same data objects as these routes.
"""


@dataclass(slots=True)
class AppState:
    """What the routes need from the server."""

    service: EnvService
    auth: Authenticator
    limiter: RateLimiter
    metrics: Metrics
    max_request_bytes: int


def create_app(state: AppState) -> FastAPI:
    """The FastAPI application serving ``state``'s sessions."""
    service, auth, limiter, metrics = state.service, state.auth, state.limiter, state.metrics
    bearer = HTTPBearer(auto_error=False, description="A token from the server's configuration.")
    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody} for code in (400, 401, 404, 409, 410, 413, 422, 429, 503)
    }

    app = FastAPI(
        title="DreamGym environment server",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        responses=error_responses,
    )

    def error_response(exc: WireError) -> Response:
        headers: dict[str, str] = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
        return Response(
            dumps({"error": service.error(exc)}),
            status_code=exc.status,
            media_type="application/json",
            headers=headers,
        )

    @app.exception_handler(WireError)
    async def on_wire_error(_: Request, exc: Exception) -> Response:  # pyright: ignore[reportUnusedFunction]
        return error_response(cast(WireError, exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: Exception) -> Response:  # pyright: ignore[reportUnusedFunction]
        errors = cast(RequestValidationError, exc).errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(WireError("invalid_json", "the request body is not valid JSON"))
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", ""))[:200],
                "type": e.get("type"),
            }
            for e in errors[:20]
        ]
        return error_response(WireError("validation_error", _summary(details), details=details))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: Exception) -> Response:  # pyright: ignore[reportUnusedFunction]
        status = cast(StarletteHTTPException, exc).status_code
        kind = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(status)
        if kind is None:
            kind = "invalid_json" if status == 400 else "validation_error"
        return error_response(WireError(kind, _HTTP_MESSAGES.get(status, "the request was rejected")))

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, exc: Exception) -> Response:  # pyright: ignore[reportUnusedFunction]
        _log.error("unexpected server error", error=type(exc).__name__)
        return JSONResponse(
            {"error": service.error(WireError("internal_error", "unexpected server error"))}, status_code=500
        )

    async def identity(  # async: FastAPI would run a sync dependency in a worker thread
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        who = auth.identify(request.headers.get("authorization"))
        if who is None:
            raise WireError("unauthorized", "a valid bearer token is required")
        retry = limiter.acquire(who)
        if retry is not None:
            raise WireError("rate_limited", "too many requests for this token", retry_after=round(retry, 3))
        return who

    async def run_op(op: Callable[[], Awaitable[Any]]) -> Any:
        scope = anyio.CancelScope()
        service.begin(scope)
        reply: Any = None
        try:
            with scope:
                reply = await op()
            if scope.cancelled_caught:
                raise WireError("shutting_down", "the server shut down before the request finished")
            return reply
        finally:
            service.end(scope)

    @app.get(
        "/health", response_model=HealthResponse, tags=["server"], responses={503: {"model": HealthResponse}}
    )
    async def health() -> Response:  # pyright: ignore[reportUnusedFunction]
        """Liveness: ``healthy``, or ``draining`` with status 503 while shutting down (no token needed)."""
        body = {
            "status": "draining" if service.draining else "healthy",
            "sessions": len(service.store),
            "version": __version__,
        }
        return Response(
            dumps(body), status_code=503 if service.draining else 200, media_type="application/json"
        )

    @app.get("/metrics", tags=["server"])
    async def get_metrics(who: Annotated[str, Depends(identity)], format: str = "json") -> Response:  # pyright: ignore[reportUnusedFunction]
        """Sessions, steps, errors and latency quantiles; ``?format=prometheus`` for the text format."""
        del who
        if format == "prometheus":
            return Response(metrics.prometheus(), media_type="text/plain; version=0.0.4")
        if format != "json":
            raise WireError("invalid_argument", "format must be json or prometheus")
        return Response(dumps(metrics.snapshot()), media_type="application/json")

    @app.get("/schema", tags=["server"])
    async def schema() -> dict[str, Any]:  # pyright: ignore[reportUnusedFunction]
        """JSON schemas of actions, observations and state (OpenEnv's ``/schema``; no token needed)."""
        return {
            "action": StepRequest.model_json_schema(),
            "observation": ObservationResponse.model_json_schema(),
            "state": SessionState.model_json_schema(),
        }

    @app.post("/sessions", status_code=201, response_model=SessionCreated, tags=["sessions"])
    async def create_session(who: Annotated[str, Depends(identity)]) -> Response:  # pyright: ignore[reportUnusedFunction]
        """Open a session with a fresh environment, owned by this token."""
        session = await run_op(lambda: service.create(who))
        return Response(dumps({"session_id": session.id}), status_code=201, media_type="application/json")

    @app.post("/sessions/{session_id}/reset", response_model=ObservationResponse, tags=["sessions"])
    async def reset(  # pyright: ignore[reportUnusedFunction]
        session_id: str, who: Annotated[str, Depends(identity)], body: ResetRequest | None = None
    ) -> Response:
        """Start a new episode; ``task`` is a Task object or an instruction string."""
        session = service.store.get(session_id, who)
        reply = await run_op(lambda: service.reset(session, body or ResetRequest()))
        return Response(dumps(reply), media_type="application/json")

    @app.post("/sessions/{session_id}/step", response_model=ObservationResponse, tags=["sessions"])
    async def step(session_id: str, body: StepRequest, who: Annotated[str, Depends(identity)]) -> Response:  # pyright: ignore[reportUnusedFunction]
        """Take one step; 409 ``reset_needed`` before a reset, 409 ``episode_finished`` after the end."""
        session = service.store.get(session_id, who)
        reply = await run_op(lambda: service.step(session, body))
        return Response(dumps(reply), media_type="application/json")

    @app.get("/sessions/{session_id}/state", response_model=SessionState, tags=["sessions"])
    async def get_state(session_id: str, who: Annotated[str, Depends(identity)]) -> Response:  # pyright: ignore[reportUnusedFunction]
        """The session's episode id, step count, task, latest observation and total reward."""
        session = service.store.get(session_id, who)
        return Response(dumps(service.state(session)), media_type="application/json")

    @app.delete(
        "/sessions/{session_id}",
        status_code=204,
        response_model=None,
        response_class=Response,
        tags=["sessions"],
    )
    async def close_session(session_id: str, who: Annotated[str, Depends(identity)]) -> Response:  # pyright: ignore[reportUnusedFunction]
        """Close the session and release its environment; later calls get 410 ``session_closed``."""
        session = service.store.get(session_id, who)
        await run_op(lambda: service.close(session))
        return Response(status_code=204)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:  # pyright: ignore[reportUnusedFunction]
        who = auth.identify(ws.headers.get("authorization"))
        session: Session | None = None
        try:
            if who is None:
                raise WireError("unauthorized", "a valid bearer token is required")
            if service.draining:
                raise WireError("shutting_down", "the server is shutting down")
            wanted = ws.query_params.get("session_id")
            if wanted:
                session = service.store.get(wanted, who)
        except WireError as exc:
            await _deny(ws, error_response(exc))
            return
        await ws.accept()
        metrics.websockets_open += 1
        try:
            await _serve_socket(ws, who, session)
        except WebSocketDisconnect:
            pass
        finally:
            metrics.websockets_open -= 1

    async def _serve_socket(ws: WebSocket, who: str, session: Session | None) -> None:
        receive, send = ws.receive, ws.send
        requests = metrics.requests
        scope = anyio.CancelScope()  # one per connection: cancelled only if a shutdown outlives its grace
        interrupted = False
        with scope:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                requests["websocket"] += 1
                raw: str | bytes = message.get("text") or message.get("bytes") or b""
                try:
                    service.begin(scope)
                except WireError as exc:
                    await send({"type": "websocket.send", "text": _error_frame(exc, None)})
                    continue
                try:
                    session, frame = await _answer(raw, who, session)
                    if frame is None:  # "close": the session is closed, so is the socket
                        await ws.close(1000)
                        return
                    await send({"type": "websocket.send", "text": frame})
                except anyio.get_cancelled_exc_class():
                    interrupted = True  # answered below; in flight until then
                    raise
                finally:
                    if not interrupted:
                        service.end(scope)
        if interrupted:
            exc = WireError("shutting_down", "the server shut down before the request finished")
            try:
                with anyio.move_on_after(1, shield=True):
                    await send({"type": "websocket.send", "text": _error_frame(exc, None)})
            finally:
                service.end(scope)

    async def _answer(
        raw: str | bytes, who: str, session: Session | None
    ) -> tuple[Session | None, str | None]:
        request_id: str | None = None
        try:
            retry = limiter.acquire(who)
            if retry is not None:
                raise WireError(
                    "rate_limited", "too many requests for this token", retry_after=round(retry, 3)
                )
            message = _parse(raw)
            kind = message.type
            if kind == "step":
                data = cast(StepRequest, message.data)
                request_id = data.request_id
                if session is None:
                    raise WireError("reset_needed", "call reset before step")
                reply = await service.step(session, data)
            elif kind == "reset":
                data = cast(ResetRequest, message.data)
                request_id = data.request_id
                if session is None or session.closed is not None:
                    session = await service.create(who)
                reply = await service.reset(session, data)
            elif kind == "state":
                return session, dumps({"type": "state", "data": service.state(session)}).decode()
            else:
                if session is not None:
                    await service.close(session)
                return None, None
            return session, dumps({"type": "observation", "data": reply}).decode()
        except WireError as exc:
            return session, _error_frame(exc, request_id)

    def _error_frame(exc: WireError, request_id: str | None) -> str:
        data = service.error(exc)
        if request_id is not None:
            data["request_id"] = request_id
        return dumps({"type": "error", "data": data}).decode()

    app.add_middleware(
        _BodyLimit, limit=state.max_request_bytes, metrics=metrics, error_response=error_response
    )
    return app


def _parse(raw: str | bytes) -> Any:
    try:
        return incoming_message.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise WireError("invalid_json", "the message is not valid JSON") from None
        details = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"][:200], "type": e["type"]} for e in errors[:20]
        ]
        raise WireError("validation_error", _summary(details), details=details) from None


def _summary(details: list[dict[str, Any]]) -> str:
    if not details:
        return "the request is invalid"
    first = details[0]
    where = ".".join(first["loc"]) or "request"
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{where}: {first['msg']}{more}"


async def _deny(ws: Any, response: Any) -> None:
    """Refuse a WebSocket handshake with an HTTP error response (or close code 1008 without support)."""
    try:
        await ws.send_denial_response(response)
    except RuntimeError:
        await ws.close(1008)


_HTTP_MESSAGES = {
    400: "the request body could not be parsed",
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
    413: "the request body is too large",
}


class _BodyLimit:
    """ASGI middleware: counts HTTP requests and answers 413 to bodies over ``limit`` bytes, whether
    announced by ``Content-Length`` or streamed (a streamed excess raises 413 inside the app, where the
    route's exception handler answers it)."""

    def __init__(self, app: ASGIApp, *, limit: int, metrics: Metrics, error_response: Any) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self._error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.metrics.requests["http"] += 1
        too_large = WireError("payload_too_large", f"the request body exceeds {self.limit} bytes")
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._error_response(too_large)(scope, receive, send)
                    return
        seen = 0
        limit = self.limit

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, limited_receive, send)
