"""How the client reaches the server: one WebSocket per client, or plain HTTP requests (aiohttp).

Both transports send a request (``reset``, ``step``, ``state`` or ``close`` with its data) and return the
answer's ``data`` dict, raising the exception for an error answer. Dropped connections are retried with
the same ``request_id``, which the server uses to answer a request it already executed instead of
executing it twice.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any, Protocol, cast

import aiohttp
import anyio
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json, to_json

from dreamgym_sdk.errors import ResetNeededError
from dreamgym_sdk.providers.config import backoff_bound
from dreamgym_sdk.serve.errors import (
    AuthenticationError,
    PayloadTooLargeError,
    ServeError,
    ServerUnavailableError,
    SessionClosedError,
    SessionNotFoundError,
    error_from_wire,
)

__all__ = ["HttpTransport", "ReconnectPolicy", "Transport", "WebSocketTransport"]

_GONE = (SessionClosedError, SessionNotFoundError)


class ReconnectPolicy(BaseModel):
    """How a client recovers from a dropped connection.

    A request whose connection fails is sent again on a new connection, up to ``attempts`` times in
    all, waiting a jittered, exponentially growing delay in between. The WebSocket transport reattaches
    to its session (``/ws?session_id=...``); because every request carries a ``request_id``, a request
    the server had already executed is answered from the server's record instead of running twice.
    Errors the server reports (auth, validation, rate limits, shutdown) are never retried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=4, ge=1)
    """Tries per request in total, the first included; ``1`` disables reconnecting."""
    initial_backoff: float = Field(default=0.05, ge=0)
    """Upper bound of the first wait, in seconds."""
    max_backoff: float = Field(default=2.0, ge=0)
    """Largest upper bound of a wait, in seconds."""

    def backoff(self, retry: int) -> float:
        """The jittered wait before retry number ``retry`` (1-based)."""
        return random.uniform(0, backoff_bound(retry, initial=self.initial_backoff, maximum=self.max_backoff))


class Transport(Protocol):
    """Sends one request and returns the answer's ``data``."""

    session_id: str | None

    async def request(self, kind: str, data: dict[str, Any] | None) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class _Dropped(Exception):
    """The connection failed before an answer arrived (retryable)."""


def _raise_for(detail: Any) -> None:
    if isinstance(detail, dict):
        raise error_from_wire(detail)  # pyright: ignore[reportUnknownArgumentType]
    raise ServeError("the server answered with a malformed error")


class WebSocketTransport:
    """One WebSocket carrying every request of the client, reconnected (and reattached) when dropped."""

    def __init__(
        self, ws_url: str, headers: dict[str, str], policy: ReconnectPolicy, max_message_bytes: int
    ) -> None:
        self._url = ws_url
        self._headers = headers
        self._policy = policy
        self._max = max_message_bytes
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.session_id: str | None = None

    async def request(self, kind: str, data: dict[str, Any] | None) -> dict[str, Any]:
        frame = to_json({"type": kind, "data": data} if data is not None else {"type": kind}).decode()
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                return await self._exchange(kind, frame)
            except _Dropped as exc:
                if attempt == policy.attempts:
                    raise ServerUnavailableError(
                        f"lost the connection to the server {attempt} time(s): {exc}", type="connection"
                    ) from None
            except _GONE:
                if kind != "reset" or self.session_id is None:
                    raise
                self.session_id = None  # the session is gone: a reset opens a new one
                continue
            await anyio.sleep(policy.backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, kind: str, frame: str) -> dict[str, Any]:
        ws = self._ws
        if ws is None or ws.closed:
            ws = await self._connect()
        try:
            await ws.send_str(frame)
            if kind == "close":
                await ws.close()
                self._ws = None
                return {}
            message = await ws.receive()
        except (aiohttp.ClientError, OSError) as exc:
            self._ws = None
            raise _Dropped(type(exc).__name__) from None
        except BaseException:  # cancelled mid-request: the answer may still come, so drop the socket
            self._ws = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await ws.close()
            raise
        if message.type is not aiohttp.WSMsgType.TEXT:
            self._ws = None
            if ws.close_code == 1009:
                raise PayloadTooLargeError(
                    "the message exceeds the server's size limit", type="payload_too_large", status=413
                )
            raise _Dropped(f"connection closed (code {ws.close_code})")
        reply = from_json(message.data)
        payload: dict[str, Any] = reply.get("data") or {}
        if reply.get("type") == "error":
            _raise_for(payload)
        sid = payload.get("session_id")
        if isinstance(sid, str):
            self.session_id = sid
        return payload

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        params = {"session_id": self.session_id} if self.session_id else None
        try:
            ws = await self._http.ws_connect(
                self._url, params=params, max_msg_size=self._max, autoping=True, compress=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise _handshake_error(exc.status) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Dropped(f"cannot connect to {self._url}: {type(exc).__name__}") from None
        self._ws = ws
        return ws

    async def aclose(self) -> None:
        ws, http = self._ws, self._http
        self._ws = self._http = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            if ws is not None:
                await ws.close()
            if http is not None:
                await http.close()


def _handshake_error(status: int) -> Exception:
    if status == 401:
        return AuthenticationError("the server rejected the bearer token", type="unauthorized", status=401)
    if status == 404:
        return SessionNotFoundError("the session no longer exists", type="session_not_found", status=404)
    if status == 410:
        return SessionClosedError("the session was closed or expired")
    if status == 503:
        return ServerUnavailableError("the server is shutting down", type="shutting_down", status=503)
    return ServeError(f"the WebSocket handshake failed with HTTP {status}", type="handshake", status=status)


class HttpTransport:
    """One HTTP request per operation (``POST /sessions/{id}/step`` ...), for networks without
    WebSockets. A session is opened on the first reset."""

    def __init__(self, base_url: str, headers: dict[str, str], policy: ReconnectPolicy) -> None:
        self._base = base_url.rstrip("/")
        self._headers = headers
        self._policy = policy
        self._http: aiohttp.ClientSession | None = None
        self.session_id: str | None = None

    async def request(self, kind: str, data: dict[str, Any] | None) -> dict[str, Any]:
        if kind == "state" and self.session_id is None:
            return {"session_id": None, "step_count": 0, "done": False, "episodes": 0}
        if kind == "close":
            if self.session_id is not None:
                sid, self.session_id = self.session_id, None
                with contextlib.suppress(*_GONE):
                    await self._call("DELETE", f"/sessions/{sid}", None)
            return {}
        for _ in range(2):  # a reset whose session is gone opens a new one, once
            if self.session_id is None:
                if kind != "reset":
                    raise ResetNeededError("call reset() before step()")
                created = await self._call("POST", "/sessions", None)
                self.session_id = str(created["session_id"])
            path = f"/sessions/{self.session_id}/{kind}"
            try:
                if kind == "state":
                    return await self._call("GET", path, None)
                return await self._call("POST", path, data or {})
            except _GONE:
                if kind != "reset":
                    raise
                self.session_id = None
        raise ServeError("could not open a session")

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                async with self._http.request(method, self._base + path, json=body) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
                if attempt == policy.attempts:
                    raise ServerUnavailableError(
                        f"cannot reach the server after {attempt} attempt(s): {type(exc).__name__}",
                        type="connection",
                    ) from None
                await anyio.sleep(policy.backoff(attempt))
                continue
            if status == 204:
                return {}
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                raise ServeError(f"the server answered HTTP {status} without JSON", status=status) from None
            if not isinstance(parsed, dict):
                raise ServeError(f"the server answered HTTP {status} with a malformed body", status=status)
            body = cast(dict[str, Any], parsed)
            if status >= 400:
                _raise_for(body.get("error"))
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await http.close()
