"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions format, with fault injection.

Use it to test anything that talks to an OpenAI-compatible endpoint (the OpenAI-compatible and LiteLLM
providers, a vLLM server setup, your own client) without the network::

    async with OpenAIServer(latency=0.01) as server:
        server.script(Fault.rate_limit(retry_after=0.1), Fault.status(500))  # the next two answers
        provider = get_provider("openai/tiny", api_base=server.base_url)
        response = await provider.complete(ChatRequest.of(None, "hi"))  # retried twice, then answered
        assert len(server.requests) == 3

Answers come from ``responder`` (a function of the request body returning the message content, or a
full completion dict), by default an echo of the last user message. Faults are scripted per request
(:meth:`OpenAIServer.script`, consumed in order) or applied to every request (``default_fault``).

The server runs on the caller's asyncio event loop. For benchmarks, where the server's CPU must not be
counted as the client's, :func:`serve_in_subprocess` runs it in another process
(``python -m dreamgym_sdk.testing.openai_server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = ["Fault", "OpenAIServer", "RecordedRequest", "Responder", "serve_in_subprocess"]

Responder = Callable[[dict[str, Any]], "str | dict[str, Any] | Awaitable[str | dict[str, Any]]"]
"""Maps a request body to the assistant's content (``str``) or a whole completion body (``dict``)."""

FaultKind = Literal["status", "hang", "malformed", "truncated", "empty", "delay"]


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One injected misbehaviour, for one request (scripted) or all of them (``default_fault``).

    Build faults with the class methods; they read like the behaviour they inject.
    """

    kind: FaultKind
    """What goes wrong."""
    status_code: int = 200
    """HTTP status for ``kind="status"``."""
    retry_after: str | None = None
    """``Retry-After`` header value, if any."""
    body: str | None = None
    """Raw body for ``status`` and ``malformed`` faults."""
    delay: float = 0.0
    """Extra seconds before answering, for ``kind="delay"``."""

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 0) -> Fault:
        """HTTP 429 with a ``Retry-After`` header (seconds or an HTTP date; ``None`` for no header)."""
        value = None if retry_after is None else str(retry_after)
        return cls(kind="status", status_code=429, retry_after=value, body=_error_body("rate limited", 429))

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, body: str | None = None) -> Fault:
        """Any HTTP status (500, 503, 400, ...) with an OpenAI-style error body."""
        value = None if retry_after is None else str(retry_after)
        return cls(
            kind="status", status_code=code, retry_after=value, body=body or _error_body("fault", code)
        )

    @classmethod
    def hang(cls) -> Fault:
        """Never answer; the request is released only when the server stops."""
        return cls(kind="hang")

    @classmethod
    def malformed(cls, body: str = '{"id": "chatcmpl-1", "choices": [') -> Fault:
        """HTTP 200 whose body is not a valid completion (invalid JSON by default)."""
        return cls(kind="malformed", body=body)

    @classmethod
    def truncated(cls) -> Fault:
        """HTTP 200 announcing a longer body than it sends, then closing the connection."""
        return cls(kind="truncated")

    @classmethod
    def empty(cls) -> Fault:
        """A valid completion with empty content."""
        return cls(kind="empty")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` more than the server's latency."""
        return cls(kind="delay", delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any] | None
    """The parsed JSON body, or ``None`` if it was not JSON."""


@dataclass
class _State:
    scripted: deque[Fault] = field(default_factory=deque[Fault])
    in_flight: int = 0
    max_in_flight: int = 0


def _error_body(message: str, code: int) -> str:
    return json.dumps({"error": {"message": message, "type": "server_error", "code": code}})


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: Any = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]  # pyright: ignore[reportUnknownVariableType]


def _default_responder(body: dict[str, Any]) -> str:
    messages = _messages(body) or [{}]
    return f"echo: {messages[-1].get('content', '')}"


def _count_words(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in _messages(body))


class OpenAIServer:
    """An OpenAI chat-completions server on ``127.0.0.1`` (a free port), as an async context manager.

    Args:
        latency: seconds every answer waits before it is sent.
        responder: produces answers; defaults to an echo of the last user message.
        default_fault: applied to every request that has no scripted fault.
        record: keep every request in :attr:`requests` (turn off for long benchmarks).
        port: the port to bind; 0 picks a free one.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        default_fault: Fault | None = None,
        record: bool = True,
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.responder: Responder = responder or _default_responder
        self.default_fault = default_fault
        self.record = record
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self._port = port
        self._state = _State()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._bound_port is None:
            raise RuntimeError("the server is not running; use it as `async with OpenAIServer() as server:`")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being handled at the same time."""
        return self._state.max_in_flight

    def script(self, *faults: Fault | None) -> None:
        """Queue faults for the next requests, in order; ``None`` means "answer normally" for that one."""
        self._state.scripted.extend(f if f is not None else Fault(kind="delay") for f in faults)

    def reset(self) -> None:
        """Forget recorded requests, scripted faults and the in-flight high-water mark."""
        self.requests.clear()
        self._state.scripted.clear()
        self._state.max_in_flight = self._state.in_flight

    async def __aenter__(self) -> OpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=2048, reuse_address=True)
        await site.start()
        server = site._server  # pyright: ignore[reportPrivateUsage]
        sockets: Any = getattr(server, "sockets", None) or []
        self._bound_port = int(sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._bound_port = None

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await self._answer(request)
        finally:
            state.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = None
        body: dict[str, Any] | None = parsed if isinstance(parsed, dict) else None  # pyright: ignore[reportUnknownVariableType]
        if self.record:
            self.requests.append(RecordedRequest(request.path, dict(request.headers), body))
        fault = self._state.scripted.popleft() if self._state.scripted else self.default_fault
        delay = self.latency + (fault.delay if fault is not None else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if body is None:
            return web.Response(status=400, text=_error_body("body is not a JSON object", 400))
        if fault is not None:
            early = await self._fault_response(request, fault)
            if early is not None:
                return early
        if fault is not None and fault.kind == "empty":
            content: str | dict[str, Any] = ""
        else:
            produced = self.responder(body)
            content = await produced if inspect.isawaitable(produced) else produced
        payload = content if isinstance(content, dict) else _completion(body, content)
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            return web.Response(
                status=fault.status_code,
                text=fault.body or "",
                content_type="application/json",
                headers=headers,
            )
        if fault.kind == "hang":
            await self._stopping.wait()
            return web.Response(status=503, text=_error_body("server stopped", 503))
        if fault.kind == "malformed":
            return web.Response(status=200, text=fault.body or "", content_type="application/json")
        if fault.kind == "truncated":
            full = json.dumps(_completion({}, "this answer is cut short")).encode()
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(full)
            await response.prepare(request)
            await response.write(full[: len(full) // 2])
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # abandon the response: the client sees a short body
        return None


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_tokens = _count_words(body)
    completion_tokens = len(content.split())
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@contextlib.asynccontextmanager
async def serve_in_subprocess(*, latency: float = 0.0, content: str | None = None) -> AsyncGenerator[str]:
    """Run an :class:`OpenAIServer` in a child process; yields its base URL.

    The child answers every request with ``content`` (or the echo responder) after ``latency`` seconds
    and records nothing. It is stopped when the context exits.
    """
    # -c, not -m: the package already imports this module, and runpy warns about running it again
    entry = "import sys; from dreamgym_sdk.testing.openai_server import main; main(sys.argv[1:])"
    args = [sys.executable, "-c", entry, "--latency", str(latency)]
    if content is not None:
        args += ["--content", content]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"http://"):
            raise RuntimeError(f"the server process did not start: {line!r}")
        yield line.decode().strip()
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(proc.wait(), 10)


async def _serve_forever(latency: float, content: str | None, port: int) -> None:
    responder: Responder | None = None
    if content is not None:
        fixed = content

        def answer(body: dict[str, Any]) -> str:
            return fixed

        responder = answer

    async with OpenAIServer(latency=latency, responder=responder, record=False, port=port) as server:
        print(server.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: Iterable[str] | None = None) -> None:
    """Command-line entry: print the base URL on stdout, then serve until killed."""
    parser = argparse.ArgumentParser(description="Fake OpenAI chat-completions server on 127.0.0.1.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--content", default=None, help="fixed answer content (default: echo)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ns = parser.parse_args(list(argv) if argv is not None else None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(ns.latency, ns.content, ns.port))


if __name__ == "__main__":
    main()
