"""The client of ``dreamgym serve``: an :class:`~dreamgym_sdk.Env` whose episodes run on the server.

A :class:`Client` is a recording env like a local :class:`~dreamgym_sdk.DreamEnv`: it keeps the
episode's transitions (with the server's ids, reasoning and provenance) and publishes
``EpisodeStarted`` / ``TransitionRecorded`` / ``EpisodeCompleted`` on its bus, so rollouts, evaluation
and training use a remote environment exactly like a local one. :class:`SyncClient` is its blocking façade
for code that is not async (like OpenEnv's ``client.sync()``): it runs an event loop in a background thread
(an anyio blocking portal) and forwards every call to it.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.env import RecordedEnv, TaskLike
from dreamgym_sdk.errors import EnvClosedError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.serve._transport import HttpTransport, ReconnectPolicy, Transport, WebSocketTransport
from dreamgym_sdk.serve.errors import ServeError
from dreamgym_sdk.serve.protocol import SessionState
from dreamgym_sdk.types import Episode, Provenance, Source, StepResult, Task, Transition, new_id, sample_of

__all__ = ["TOKEN_ENV", "Client", "SyncClient"]

TOKEN_ENV = "DREAMGYM_SERVE_TOKEN"
"""Environment variable the client reads its bearer token from when none is given."""

_log = get_logger("dreamgym_sdk.serve.client")


class Client(RecordedEnv):
    """A remote environment served by ``dreamgym serve`` (one server session per client).

    ```python
    async with Client("http://127.0.0.1:8000", token=token) as env:
        obs, info = await env.reset(task="open the door", seed=0)
        obs, reward, terminated, truncated, info = await env.step("open door")
    ```

    The connection is opened by the first call; the session by the first ``reset``. Errors the server
    reports are raised as the matching exception: :class:`~dreamgym_sdk.ResetNeededError`,
    :class:`~dreamgym_sdk.EpisodeFinishedError`, :class:`~dreamgym_sdk.serve.SessionClosedError` (an
    ``EnvClosedError``) or a :class:`~dreamgym_sdk.serve.ServeError` subclass (authentication, rate
    limits, validation, shutdown). Calls are bounded by the caller (``anyio.fail_after``), not by
    timeouts here. asyncio only (aiohttp).

    Args:
        url: the server's base URL (``http://host:port``; ``ws://`` and ``https://`` work too).
        token: the bearer token; defaults to the ``DREAMGYM_SERVE_TOKEN`` environment variable.
        transport: ``"websocket"`` (one socket for all calls, the fast path) or ``"http"`` (one request
            per call, for networks that block WebSockets).
        bus: where to publish the episode events (the rollout runner sets its own when this is ``None``).
        group: index of this rollout within its task's group (set by the rollout runner).
        environment: name recorded on tasks when the server does not report them.
        reconnect: how dropped connections are retried (see :class:`ReconnectPolicy`).
        max_message_bytes: largest answer accepted from the server.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        transport: Literal["websocket", "http"] = "websocket",
        bus: EventBus | None = None,
        group: int = 0,
        environment: str = "remote",
        reconnect: ReconnectPolicy | None = None,
        max_message_bytes: int = 16 * 2**20,
    ) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        base = _http_base(url)
        policy = reconnect or ReconnectPolicy()
        self.url = base
        self.bus = bus
        self.group = group
        self.environment = environment
        self._transport: Transport
        if transport == "websocket":
            ws_url = "ws" + base.removeprefix("http") + "/ws"
            self._transport = WebSocketTransport(ws_url, headers, policy, max_message_bytes)
        elif transport == "http":
            self._transport = HttpTransport(base, headers, policy)
        else:
            raise ValueError(f"transport must be 'websocket' or 'http', not {transport!r}")
        self._ids = new_id()[:16]
        self._count = 0

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.url!r}, session_id={self.session_id!r})"

    @property
    def session_id(self) -> str | None:
        """The server session this client uses (``None`` before the first reset)."""
        return self._transport.session_id

    def _request_id(self) -> str:
        self._count += 1
        return f"{self._ids}-{self._count}"

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a new episode on the server; returns ``(observation, info)`` like the served env.

        ``info["task"]`` is the :class:`~dreamgym_sdk.Task` the server ran (a string task becomes one
        with the server's environment name).
        """
        if self._closed:
            raise EnvClosedError("this environment is closed")
        data: dict[str, Any] = {"request_id": self._request_id()}
        if task is not None:
            data["task"] = task.model_dump(mode="json") if isinstance(task, Task) else task
        if seed is not None:
            data["seed"] = seed
        if options is not None:
            data["options"] = options
        reply = await self._transport.request("reset", data)
        obs = str(reply["observation"]["text"])
        info: dict[str, Any] = dict(reply.get("metadata") or {})
        the_task = _task_of(info.get("task"), task, self.environment)
        info["task"] = the_task
        episode_id = info.get("episode_id")
        await self._start_episode(
            the_task,
            _source(info.get("source")),
            obs,
            seed,
            episode_id=episode_id if isinstance(episode_id, str) else None,
        )
        return obs, info

    async def step(self, action: str) -> StepResult:
        """Take one step on the server; the transition is recorded here too (same id as the server's)."""
        rec = self._check_can_step()
        sample = sample_of(action)
        data: dict[str, Any] = {"action": str(action), "request_id": self._request_id()}
        if sample is not None:  # the server's transition carries it too, for trainers on its bus
            data["sample"] = sample.model_dump(mode="json")
        reply = await self._transport.request("step", data)
        obs = str(reply["observation"]["text"])
        reward = float(reply["reward"])
        terminated = bool(reply["terminated"])
        truncated = bool(reply["truncated"])
        info: dict[str, Any] = reply.get("metadata") or {}
        raw = info.get("provenance")
        provenance = Provenance.model_validate(raw) if isinstance(raw, dict) else Provenance()
        if raw is not None:
            info["provenance"] = provenance
        transition_id = info.get("transition_id")
        transition = Transition(
            id=transition_id if isinstance(transition_id, str) else new_id(),
            task_id=rec.task.id,
            episode_id=rec.episode_id,
            step=rec.steps,
            environment=rec.task.environment,
            state=rec.state,
            action=str(action),
            reasoning=str(info.get("reasoning", "")),
            next_state=obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            success=bool(info.get("success", False)),
            source=_source(info.get("source")),
            provenance=provenance,
            sample=sample,
        )
        await rec.record(transition)
        return StepResult(obs, reward, terminated, truncated, info)

    async def state(self) -> SessionState:
        """The server's view of the session: episode id, step count, task, latest observation, reward."""
        if self._closed:
            raise EnvClosedError("this environment is closed")
        return SessionState.model_validate(await self._transport.request("state", None))

    async def close(self) -> None:
        """Close the server session and the connection; idempotent, never raises for a lost server."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._transport.session_id is not None:
                await self._transport.request("close", None)
        except ServeError as exc:
            _log.debug("closing the remote session failed", error=type(exc).__name__)
        except EnvClosedError:
            pass
        finally:
            await self._transport.aclose()

    def sync(self) -> SyncClient:
        """A blocking façade over this client for non-async code (it runs its own event loop thread).

        Use it on a client that has not been used from async code yet (its connection would belong to
        another event loop).

        Raises:
            RuntimeError: the client was already used.
        """
        if self._count or self._closed:
            raise RuntimeError("sync() needs a fresh client: this one was already used from async code")

        return SyncClient(self)


class SyncClient:
    """Blocking ``reset`` / ``step`` / ``state`` / ``close`` over an async :class:`Client`.

    ```python
    with Client(url, token=token).sync() as env:
        obs, info = env.reset(task="open the door")
        obs, reward, terminated, truncated, info = env.step("open door")
    ```

    Do not call it from inside a running event loop's thread: it blocks that thread.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        """The async client every call goes to."""
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    def _portal_now(self) -> BlockingPortal:
        if self._portal is None:
            self._portal_cm = start_blocking_portal("asyncio")
            self._portal = self._portal_cm.__enter__()
        return self._portal

    def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """See :meth:`Client.reset`."""

        async def call() -> tuple[str, dict[str, Any]]:
            return await self.client.reset(task=task, seed=seed, options=options)

        return self._portal_now().call(call)

    def step(self, action: str) -> StepResult:
        """See :meth:`Client.step`."""
        return self._portal_now().call(self.client.step, action)

    def state(self) -> SessionState:
        """See :meth:`Client.state`."""
        return self._portal_now().call(self.client.state)

    @property
    def session_id(self) -> str | None:
        """See :attr:`Client.session_id`."""
        return self.client.session_id

    @property
    def history(self) -> tuple[Transition, ...]:
        """The current episode's transitions so far."""
        return self.client.history

    @property
    def episode(self) -> Episode | None:
        """The current (or last) episode so far."""
        return self.client.episode

    def close(self) -> None:
        """Close the client and stop the background event loop; idempotent."""
        portal_cm, portal = self._portal_cm, self._portal
        self._portal_cm = self._portal = None
        if portal_cm is None or portal is None:
            anyio.run(self.client.close)  # never used: nothing is open, but the client must end closed
            return
        try:
            portal.call(self.client.close)
        finally:
            portal_cm.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _http_base(url: str) -> str:
    base = url.rstrip("/").removesuffix("/ws")
    for scheme, http in (("wss://", "https://"), ("ws://", "http://")):
        if base.startswith(scheme):
            base = http + base.removeprefix(scheme)
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http://, https://, ws:// or wss://, got {url!r}")
    return base


def _task_of(reported: Any, sent: TaskLike | None, environment: str) -> Task:
    if isinstance(reported, dict):
        try:
            return Task.model_validate(reported)
        except ValueError:
            pass
    if isinstance(sent, Task):
        return sent
    return Task(instruction=sent or "", environment=environment)


def _source(value: Any) -> Source:
    try:
        return Source(value)
    except ValueError:
        return Source.SYNTHETIC
