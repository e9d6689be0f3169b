"""Real TextWorld games behind a catalogue: what ``dreamgym serve --games DIR`` serves.

A client names a game by its task id (or sends the task :meth:`GameInfo.to_task` made); the server plays
its own copy of that game, so no request can make it open a file of the client's choosing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dreamgym_sdk.env import TaskLike
from dreamgym_sdk.types import Task

from .env import TextWorldEnv
from .games import GameInfo

__all__ = ["GameCatalogEnv"]


class GameCatalogEnv(TextWorldEnv):
    """A :class:`TextWorldEnv` that plays only the games it was given, chosen by task id at reset.

    ```python
    games = load_games("tw_games")
    async with GameCatalogEnv(games, max_steps=30) as env:
        obs, info = await env.reset(task=games[0].id)
    ```

    Args:
        games: the playable games; their ids must be distinct.
        **options: the :class:`TextWorldEnv` settings (``max_steps``, ``observation``, ...).

    Raises:
        ValueError: two games share an id.
    """

    def __init__(self, games: Sequence[GameInfo], **options: Any) -> None:
        super().__init__(None, **options)
        self.catalog = {game.id: game for game in games}
        if len(self.catalog) != len(games):
            raise ValueError("the games' ids must be distinct")

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start the named game: its task id, as a string or as the id (or the instruction) of a task;
        anything else in the task is ignored.

        Raises:
            ValueError: no game named, or none of the catalogue's games has that id.
        """
        key: str | None = task if not isinstance(task, Task) else None
        if isinstance(task, Task):  # over the wire a plain string arrives as the instruction of a new task
            key = task.id if task.id in self.catalog else task.instruction
        if not key:
            raise ValueError(f"name a game: the task id of one of the {len(self.catalog)} served games")
        game = self.catalog.get(key)
        if game is None:
            raise ValueError(f"no served game has the id {key!r} ({len(self.catalog)} games are served)")
        return await super().reset(task=game.to_task(), seed=seed, options=options)
