""":class:`OpenEnvWebSocketEnv`: an OpenEnv environment server, spoken to over its WebSocket protocol.

The protocol (OpenEnv's ``/ws`` endpoint): one session per connection; the client sends
``{"type": "reset", "data": {...}}``, ``{"type": "step", "data": <action fields>}``, ``{"type": "state"}``
or ``{"type": "close"}``; the server answers ``{"type": "observation", "data": <payload>}``,
``{"type": "state", "data": {...}}`` or ``{"type": "error", "data": {"message", "code"}}``. ``GET /schema``
gives the action's JSON schema. No ``openenv`` package is needed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import anyio

from dreamgym_sdk.errors import ResetNeededError
from dreamgym_sdk.types import Task

from ._base import ActionFromText, ObservationToText, OpenEnvBase, OpenEnvError, render_observation

__all__ = ["OpenEnvWebSocketEnv", "text_field_action"]

_SESSION_ERRORS = frozenset({"CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR"})
"""Error codes after which OpenEnv's server closes the connection (the next reset opens a new one)."""


def text_field_action(schema: Mapping[str, Any]) -> ActionFromText:
    """The action mapping for a schema with exactly one required string field: text goes into it.

    Raises:
        ValueError: the schema has no single required string field (pass ``action_from_text``).
    """
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = [
        name for name in schema.get("required", []) if properties.get(name, {}).get("type") == "string"
    ]
    if len(required) != 1 or len(schema.get("required", [])) != 1:
        raise ValueError(
            "cannot map a text action onto this action schema (it needs exactly one required string field): "
            f"pass action_from_text; schema properties: {sorted(properties)}"
        )
    field = required[0]
    return lambda text: {field: text}


class OpenEnvWebSocketEnv(OpenEnvBase):
    """A real :class:`~dreamgym_sdk.Env` backed by an OpenEnv server session over WebSocket.

    ```python
    async with OpenEnvWebSocketEnv("http://127.0.0.1:8000", max_steps=20) as env:
        obs, info = await env.reset(seed=0)
        result = await env.step("hello")            # {"message": "hello"} for the echo environment
    ```

    The connection (one server session) opens on the first ``reset`` and is reused for later episodes.
    A request cancelled midway leaves the connection's answers out of step, so it is dropped: the next
    ``reset`` opens a new session and ``step`` raises :class:`~dreamgym_sdk.ResetNeededError` until then.

    ``info`` holds the observation's fields (``observation``), its ``metadata``, ``success``
    (``metadata["success"]``, else ``False``) and, after ``reset``, the ``task``.

    Args:
        base_url: the server's ``http(s)://`` or ``ws(s)://`` base URL.
        action_from_text: text → action fields; by default the text fills the action schema's one
            required string field (read from ``GET /schema``).
        observation_to_text: observation fields → text; by default the one text field, else
            ``name: value`` lines.
        max_steps: truncate episodes after this many steps (OpenEnv has no truncation of its own).
        environment: the environment name recorded on tasks given as strings.
        task_to_reset: extra reset arguments that select the task on the server.
        headers: HTTP headers of the connection (e.g. ``Authorization``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        action_from_text: ActionFromText | None = None,
        observation_to_text: ObservationToText = render_observation,
        max_steps: int | None = None,
        environment: str = "openenv",
        task_to_reset: Callable[[Task], dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            observation_to_text=observation_to_text,
            max_steps=max_steps,
            environment=environment,
            task_to_reset=task_to_reset,
        )
        base = base_url.rstrip("/")
        self.http_url = base.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        self.ws_url = self.http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"
        self.action_from_text = action_from_text
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def state(self) -> dict[str, Any]:
        """The server's ``state`` of the current session (episode id, step count, ...)."""
        async with self._lock:
            if self._ws is None:
                raise ResetNeededError("call reset() first")
            return await self._request({"type": "state"})

    async def _reset_payload(self, data: dict[str, Any]) -> Mapping[str, Any]:
        if self._ws is None:
            await self._connect()
        return await self._request({"type": "reset", "data": data})

    async def _step_payload(self, action: str) -> Mapping[str, Any]:
        if self._ws is None:
            raise ResetNeededError("the connection was lost: call reset() to start a new session")
        assert self.action_from_text is not None
        fields = self.action_from_text(action)
        if hasattr(fields, "model_dump"):
            fields = fields.model_dump()
        return await self._request({"type": "step", "data": fields})

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        ws = self._ws
        assert ws is not None
        done = False
        try:
            await ws.send_str(json.dumps(message))
            reply = await ws.receive()
            done = True
        finally:
            if not done:  # cancelled or failed midway: the answers would be out of step
                await self._disconnect()
        if reply.type is not aiohttp.WSMsgType.TEXT:
            await self._disconnect()
            raise OpenEnvError(f"the server closed the session ({reply.type.name})", code="CONNECTION_CLOSED")
        answer: dict[str, Any] = json.loads(reply.data)
        data: dict[str, Any] = answer.get("data") or {}
        if answer.get("type") == "error":
            code = data.get("code")
            if code in _SESSION_ERRORS:  # the server ends the session after these
                await self._disconnect()
            raise OpenEnvError(str(data.get("message", "error")), code=code)
        return data

    async def _connect(self) -> None:
        session = self._session or aiohttp.ClientSession(headers=self._headers)
        self._session = session
        if self.action_from_text is None:
            async with session.get(self.http_url + "/schema") as response:
                response.raise_for_status()
                schemas = await response.json()
            self.action_from_text = text_field_action(schemas["action"])
        self._ws = await session.ws_connect(self.ws_url, max_msg_size=100 * 2**20)

    async def _disconnect(self) -> None:
        ws, self._ws = self._ws, None
        self._guard.resetting()  # the episode lived on the connection
        if ws is not None:
            with anyio.CancelScope(shield=True):
                await ws.close()

    async def _close(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):  # the session ends either way
                await ws.send_str(json.dumps({"type": "close"}))
        await self._disconnect()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
