"""OpenEnv's generated echo environment and a minimal server speaking OpenEnv's wire protocol.

``openenv`` itself cannot join the project's environment (it pins an older Pillow through gradio), so
the tests run against this stand-in: the echo environment of ``openenv init``'s template (same models,
same rewards) behind ``/ws`` and ``/schema`` endpoints that follow ``openenv.core.env_server.http_server``
(message types, payload shape, error codes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] = Field(default_factory=dict)


class Observation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    done: bool = False
    reward: bool | int | float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EchoAction(Action):
    message: str = Field(..., description="Message to echo back")


class EchoObservation(Observation):
    echoed_message: str = ""
    message_length: int = 0


class State(BaseModel):
    model_config = ConfigDict(extra="allow")
    episode_id: str | None = None
    step_count: int = 0


class EchoEnvironment:
    """The template's echo environment; ``done`` when the message is "bye" (the template never ends)."""

    def __init__(self) -> None:
        self._state = State(episode_id=str(uuid.uuid4()))
        self.closed = False

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> EchoObservation:
        self._state = State(episode_id=episode_id or str(uuid.uuid4()), step_count=0)
        return EchoObservation(echoed_message="Echo environment ready!", message_length=0, reward=0.0)

    def step(self, action: EchoAction) -> EchoObservation:
        self._state.step_count += 1
        message = action.message
        return EchoObservation(
            echoed_message=message,
            message_length=len(message),
            done=message == "bye",
            reward=min(len(message) * 0.1, 1.0),
            metadata={"original_message": message, "step": self._state.step_count},
        )

    async def step_async(self, action: EchoAction) -> EchoObservation:
        return self.step(action)

    @property
    def state(self) -> State:
        return self._state

    def close(self) -> None:
        self.closed = True


def serialize_observation(observation: Observation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "observation": observation.model_dump(exclude={"reward", "done"}),
        "reward": observation.reward,
        "done": observation.done,
    }
    if observation.metadata:
        result["metadata"] = observation.metadata
    return result


@dataclass
class ServerStats:
    """What the tests observe of the server."""

    sessions: int = 0
    active: int = 0
    max_sessions: int = 1000
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a step with the message "hang" arrived (that step is never answered)."""


STATS = web.AppKey("stats", ServerStats)


async def ws_endpoint(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    stats = request.app[STATS]
    if stats.active >= stats.max_sessions:  # as OpenEnv: an error message, then the connection closes
        message = f"Server at capacity: {stats.active}/{stats.max_sessions} sessions active."
        await ws.send_json({"type": "error", "data": {"message": message, "code": "CAPACITY_REACHED"}})
        await ws.close()
        return ws
    stats.sessions += 1
    stats.active += 1
    try:
        await _serve_session(ws, stats)
    finally:
        stats.active -= 1
    return ws


async def _serve_session(ws: web.WebSocketResponse, stats: ServerStats) -> None:
    env = EchoEnvironment()
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            break
        try:
            message = json.loads(msg.data)
        except json.JSONDecodeError as exc:
            await ws.send_json(
                {"type": "error", "data": {"message": f"Invalid JSON: {exc}", "code": "INVALID_JSON"}}
            )
            continue
        kind = message.get("type", "")
        try:
            if kind == "reset":
                response = {
                    "type": "observation",
                    "data": serialize_observation(env.reset(**message.get("data", {}))),
                }
            elif kind == "step":
                action = EchoAction.model_validate(message["data"])
                if action.message == "hang":
                    stats.hanging.set()
                    continue
                response = {"type": "observation", "data": serialize_observation(env.step(action))}
            elif kind == "state":
                response = {"type": "state", "data": env.state.model_dump()}
            elif kind == "close":
                break
            else:
                response = {
                    "type": "error",
                    "data": {"message": f"Unknown message type: {kind}", "code": "UNKNOWN_TYPE"},
                }
        except ValidationError as exc:
            response = {
                "type": "error",
                "data": {
                    "message": "Invalid message",
                    "code": "VALIDATION_ERROR",
                    "errors": json.loads(exc.json()),
                },
            }
        await ws.send_json(response)
    await ws.close()


async def schema_endpoint(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "action": EchoAction.model_json_schema(),
            "observation": EchoObservation.model_json_schema(),
            "state": State.model_json_schema(),
        }
    )


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[str, ServerStats]]:
    """Serve the echo environment on 127.0.0.1 (a free port); yields its base URL and its stats."""
    app = web.Application()
    stats = ServerStats()
    app[STATS] = stats
    app.router.add_get("/ws", ws_endpoint)
    app.router.add_get("/schema", schema_endpoint)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", stats
    finally:
        await runner.cleanup()
