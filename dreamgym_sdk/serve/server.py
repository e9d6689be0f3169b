"""The environment server: many isolated sessions of an environment over HTTP and WebSocket.

:class:`EnvServer` is an async context manager. Entering it binds the socket and starts uvicorn and the
idle-session reaper in a task group the server owns; leaving it shuts down gracefully: new requests are
refused with ``shutting_down``, requests in flight finish and are answered (for up to
``shutdown_grace`` seconds), then connections and sessions are closed.

```python
async with EnvServer.for_model(model, ServeConfig(port=0, tokens=["secret"])) as server:
    print(server.url)            # http://127.0.0.1:<port>
    await server.wait_closed()   # until shutdown() is called (e.g. from a signal handler)
```
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc

from dreamgym_sdk._imports import require
from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.env import DreamEnv
from dreamgym_sdk.experience.base import ExperienceModel
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.serve.auth import Authenticator, RateLimiter
from dreamgym_sdk.serve.config import ServeConfig
from dreamgym_sdk.serve.errors import ServeError
from dreamgym_sdk.serve.metrics import Metrics
from dreamgym_sdk.serve.service import EnvService
from dreamgym_sdk.serve.sessions import EnvFactory, SessionStore

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["EnvServer"]

_log = get_logger("dreamgym_sdk.serve")
_UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class EnvServer:
    """Serves one environment per session, all sessions sharing what ``env_factory`` closes over.

    Args:
        env_factory: makes the environment of each new session (sync or async); cheap envs such as
            :class:`~dreamgym_sdk.DreamEnv` over one shared experience model and bus are the intended use.
        config: listening address, tokens and limits; the defaults listen on 127.0.0.1:8000 and need a
            token from ``DREAMGYM_SERVE_TOKENS``.

    Raises:
        ConfigError: no token is configured and ``allow_unauthenticated`` is off.
    """

    def __init__(self, env_factory: EnvFactory, config: ServeConfig | None = None) -> None:
        self.config = config = config or ServeConfig()
        tokens = config.resolved_tokens()
        api_key = config.api_key_value()
        secrets = [*tokens, *([api_key] if api_key else [])]
        self.metrics = Metrics()
        """Counters and latency quantiles, as served on ``/metrics``."""
        self.sessions = SessionStore(
            env_factory,
            self.metrics,
            max_sessions=config.max_sessions,
            max_sessions_per_owner=config.max_sessions_per_token,
            idle_timeout=config.idle_timeout,
        )
        """The live sessions."""
        self.service = EnvService(
            self.sessions, self.metrics, environment=config.environment, secrets=secrets
        )
        self._auth = Authenticator(tokens, allow_unauthenticated=config.allow_unauthenticated)
        self._limiter = RateLimiter(config.rate_limit, config.burst)
        self._app: FastAPI | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._uvicorn: Any = None
        self._port: int | None = None
        self._shutting_down = False
        self._life: _Lifecycle | None = None  # created on entry: anyio objects need a running event loop
        self._hygiene = _LogHygiene(self.service.scrub)

    @classmethod
    def for_model(
        cls, model: ExperienceModel, config: ServeConfig | None = None, *, bus: EventBus | None = None
    ) -> EnvServer:
        """A server whose sessions are :class:`~dreamgym_sdk.DreamEnv` episodes over one shared ``model``
        (and ``bus``), with ``config.max_steps`` and ``config.environment``."""
        cfg = config or ServeConfig()

        def make() -> DreamEnv:
            return DreamEnv(model, bus=bus, max_steps=cfg.max_steps, environment=cfg.environment)

        return cls(make, cfg)

    @property
    def app(self) -> FastAPI:
        """The ASGI application (FastAPI); its OpenAPI schema is ``app.openapi()``."""
        if self._app is None:
            require("fastapi", extra="serve", feature="dreamgym serve")
            from dreamgym_sdk.serve.app import AppState, create_app  # imports FastAPI: the serve extra

            state = AppState(
                service=self.service,
                auth=self._auth,
                limiter=self._limiter,
                metrics=self.metrics,
                max_request_bytes=self.config.max_request_bytes,
            )
            self._app = create_app(state)
        return self._app

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``); only while the server runs."""
        if self._port is None:
            raise ServeError("the server is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port/ws`` of the running server."""
        return "ws" + self.url.removeprefix("http") + "/ws"

    async def __aenter__(self) -> Self:
        require("fastapi", extra="serve", feature="dreamgym serve")
        uvicorn = require("uvicorn", extra="serve", feature="dreamgym serve")
        require("websockets", extra="serve", feature="the WebSocket endpoint of dreamgym serve")
        cfg = self.config
        app = self.app
        sock = _bind(cfg.host, cfg.port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            ws=_websocket_protocol(),
            ws_max_size=cfg.max_request_bytes,
            ws_ping_interval=cfg.ws_ping_interval,
            ws_ping_timeout=cfg.ws_ping_interval,
            lifespan="off",
            log_config=None,
            access_log=cfg.access_log,
            timeout_graceful_shutdown=max(1.0, cfg.shutdown_grace),
            server_header=False,
            backlog=4096,
        )
        if self._life is not None:
            raise ServeError("this server is already running (or has run); make a new EnvServer")
        self._life = _Lifecycle()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        for name in _UVICORN_LOGGERS:
            logging.getLogger(name).addFilter(self._hygiene)
        try:
            tg.start_soon(self._reap)
            await tg.start(self._run_uvicorn, _server_class(uvicorn)(config), sock)
        except BaseException as exc:
            tg.cancel_scope.cancel()
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            sock.close()
            self._remove_log_filters()
            raise
        _log.info("serving", url=self.url, sessions_max=cfg.max_sessions)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tg = self._tg
        try:
            with anyio.CancelScope(shield=True):
                await self.shutdown()
        finally:
            self._tg = None
            self._remove_log_filters()
            if tg is not None:
                tg.cancel_scope.cancel()  # the reaper, and uvicorn if shutdown() failed
                await tg.__aexit__(exc_type, exc, tb)

    async def shutdown(self) -> None:
        """Stop gracefully; idempotent, and safe to call from any task of the event loop.

        New requests get ``shutting_down`` (503); requests in flight finish and are answered (at most
        ``shutdown_grace`` seconds, then they are cancelled); then sockets and sessions are closed.
        """
        life = self._life
        if life is None:
            return
        if self._shutting_down:
            await life.closed.wait()
            return
        self._shutting_down = True
        try:
            _log.info("shutting down", inflight=self.service.inflight, sessions=len(self.sessions))
            await self.service.drain(self.config.shutdown_grace)
            if self._uvicorn is not None:
                self._uvicorn.should_exit = True
                await life.uvicorn_done.wait()
            await self.sessions.close_all()
        finally:
            life.reaper.cancel()  # not the task group's scope: that one also covers our owner's body
            self._port = None
            life.closed.set()
            _log.info("stopped")

    def _remove_log_filters(self) -> None:
        for name in _UVICORN_LOGGERS:
            logging.getLogger(name).removeFilter(self._hygiene)

    async def wait_closed(self) -> None:
        """Wait until the server has shut down."""
        if self._life is None:
            raise ServeError("the server was never started")
        await self._life.closed.wait()

    async def _run_uvicorn(
        self, server: Any, sock: socket.socket, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        life = self._life
        assert life is not None
        self._uvicorn = server
        server.on_started = task_status.started
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits the process on startup failure; fail the server instead
            raise ServeError("the HTTP server failed to start (see the uvicorn log)") from exc
        finally:
            sock.close()
            life.uvicorn_done.set()
        if not self._shutting_down:  # uvicorn stopped by itself (it should not): stop everything
            _log.warning("the HTTP server stopped unexpectedly")
            life.closed.set()

    async def _reap(self) -> None:
        interval = min(30.0, max(0.01, self.config.idle_timeout / 4))
        assert self._life is not None
        with self._life.reaper:
            while True:
                await anyio.sleep(interval)
                expired = await self.sessions.expire_idle()
                if expired:
                    _log.info("expired idle sessions", count=expired)


@dataclass(slots=True)
class _Lifecycle:
    """What exists only while the server runs."""

    uvicorn_done: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)
    reaper: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class _LogHygiene(logging.Filter):
    """Installed on uvicorn's loggers while a server runs.

    - Scrubs secrets: at DEBUG level the ``websockets`` protocol (logging through ``uvicorn.error``)
      prints every handshake header, ``Authorization`` included.
    - Drops the error uvicorn logs for a refused WebSocket handshake: refusing with an HTTP response
      (401, 404, 503) is deliberate, not an application failure.
    """

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        original = record.getMessage()
        if original == "ASGI callable returned without completing handshake.":
            return False
        if original.lower().startswith("< authorization:"):
            clean = "< authorization: ***"
        else:
            clean = self._scrub(original) if len(original) < 100_000 else "<log record too long>"
        if clean != original:
            record.msg, record.args = clean, None
        return True


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); raises OSError if the port is taken."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


_QUEUED_MESSAGES = 16


def _websocket_protocol() -> Any:
    """Uvicorn's websockets (sans-I/O) protocol, reading on while fewer than 16 messages are queued.

    The stock protocol stops reading after every message and resumes once the application took it: two
    ``epoll_ctl`` calls and an extra event-loop turn per message, a third of the server's time per step
    with an instant environment. Memory stays bounded (16 messages of at most ``max_request_bytes``).
    Falls back to uvicorn's choice if its internals differ from what this relies on.
    """
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # pragma: no cover - websockets missing or uvicorn reorganised
        return "auto"
    base: Any = WebSocketsSansIOProtocol
    if not callable(getattr(base, "send_receive_event_to_app", None)):  # pragma: no cover
        return "auto"

    class _Protocol(base):
        def send_receive_event_to_app(self) -> None:
            if getattr(self, "read_paused", True) or self.queue.qsize() >= _QUEUED_MESSAGES:
                super().send_receive_event_to_app()  # pyright: ignore[reportUnknownMemberType]
                return
            self.read_paused = True  # makes the stock method skip its pause_reading()
            try:
                super().send_receive_event_to_app()  # pyright: ignore[reportUnknownMemberType]
            finally:
                self.read_paused = False

    return _Protocol


def _server_class(uvicorn: Any) -> Any:
    """Uvicorn's Server without its signal handlers (the owner of the EnvServer decides about signals)
    and with a hook called once it accepts connections."""

    class _Server(uvicorn.Server):  # type: ignore[misc, name-defined]
        on_started: Callable[[], None] | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)  # pyright: ignore[reportUnknownMemberType]
            if self.on_started is not None and not self.should_exit:  # pyright: ignore[reportUnknownMemberType]
                self.on_started()

    return _Server
