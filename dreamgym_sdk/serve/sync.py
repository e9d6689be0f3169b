"""A blocking façade over :class:`~dreamgym_sdk.serve.Client` for code that is not async.

Like OpenEnv's ``client.sync()``: the façade runs an event loop in a background thread (an anyio
blocking portal) and forwards every call to it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from dreamgym_sdk.env import TaskLike
from dreamgym_sdk.serve.protocol import SessionState
from dreamgym_sdk.types import Episode, StepResult, Transition

if TYPE_CHECKING:
    from dreamgym_sdk.serve.client import Client

__all__ = ["SyncClient"]


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
