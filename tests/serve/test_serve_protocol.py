"""The wire protocol: OpenEnv-style frames as OpenEnv's own client sends them, and anonymous mode."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from serve_helpers import AUTH_A, running
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK

from dreamgym_sdk.serve import Client


async def exchange(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return json.loads(await ws.recv())


async def test_openenv_client_frames() -> None:
    """What OpenEnv's ``EnvClient`` sends (``reset(**kwargs)``, ``step(action)`` with ``metadata``,
    ``state()``, ``close()``) and reads (``data.observation/reward/done/metadata``; errors'
    ``data.message`` and ``data.code``)."""
    async with running() as server, connect(server.ws_url, additional_headers=AUTH_A, proxy=None) as ws:
        reset = await exchange(
            ws, {"type": "reset", "data": {"task": "echo", "seed": 1, "episode_id": "e-1"}}
        )
        assert reset["type"] == "observation"
        data = reset["data"]
        assert (data["observation"], data["reward"], data["done"]) == ({"text": "start:echo"}, None, False)
        assert data["metadata"]["task"]["instruction"] == "echo"
        step = await exchange(ws, {"type": "step", "data": {"action": "hello", "metadata": {}}})
        assert step["type"] == "observation"
        assert (step["data"]["observation"]["text"], step["data"]["reward"], step["data"]["done"]) == (
            "echo|0|hello",
            0.0,
            False,
        )
        state = await exchange(ws, {"type": "state"})
        assert state["type"] == "state"
        assert (state["data"]["episode_id"], state["data"]["step_count"]) == (
            data["metadata"]["episode_id"],
            1,
        )
        error = await exchange(ws, {"type": "step", "data": {"message": "wrong action shape"}})
        assert error["type"] == "error"
        assert error["data"]["code"] == "VALIDATION_ERROR" and error["data"]["message"]
        unknown = await exchange(ws, {"type": "mcp", "data": {}})
        assert unknown["data"]["code"] == "VALIDATION_ERROR"
        await ws.send(json.dumps({"type": "close"}))
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000
    assert server.metrics.sessions_closed == 1


async def test_anonymous_mode_still_rejects_wrong_tokens() -> None:
    async with (
        running(tokens=(), allow_unauthenticated=True) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        assert (await http.post("/sessions")).status_code == 201
        assert (await http.post("/sessions", headers=AUTH_A)).status_code == 401
        async with Client(server.url, token="") as env:
            obs, _ = await env.reset(task="anon")
            assert obs == "start:anon"


def test_the_client_side_needs_no_server_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dreamgym_sdk.serve, dreamgym_sdk.cli.serve; "
        "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'websockets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_pipelined_frames_are_answered_in_order() -> None:
    """More frames than the server queues before it pauses reading (16): all answered, in order."""
    async with (
        running(max_steps=100) as server,
        connect(server.ws_url, additional_headers=AUTH_A, proxy=None) as ws,
    ):
        await exchange(
            ws, {"type": "reset", "data": {"task": {"instruction": "pipe", "metadata": {"length": 100}}}}
        )
        for k in range(60):
            await ws.send(json.dumps({"type": "step", "data": {"action": f"a{k}", "request_id": f"r{k}"}}))
        answers = [json.loads(await ws.recv()) for _ in range(60)]
        assert [a["data"]["request_id"] for a in answers] == [f"r{k}" for k in range(60)]
        assert answers[-1]["data"]["observation"]["text"] == "pipe|59|a59"
