"""Tasks of TextWorld games with their real initial states, for a synthetic environment to start from."""

from __future__ import annotations

from collections.abc import Iterable

from dreamgym_sdk.types import Task

from .env import ObservationMode, TextWorldEnv
from .games import GameInfo
from .state import TextWorldStateMapper

__all__ = ["tasks_with_initial_states"]


async def tasks_with_initial_states(
    games: Iterable[GameInfo],
    *,
    observation: ObservationMode | str = ObservationMode.ABSTRACT,
    mapper: TextWorldStateMapper | None = None,
) -> list[Task]:
    """The task of every game (:meth:`GameInfo.to_task`) with ``initial_state`` set to the observation a
    real :class:`TextWorldEnv` returns when the game is reset.

    A :class:`~dreamgym_sdk.DreamEnv` starts a task's episodes from its ``initial_state``; without one it
    asks the experience model to imagine a state, which a small distilled model (trained on real
    transitions only) cannot do. Observe the games as the model's training data was collected (the
    abstract state by default, as ``dreamgym collect textworld`` does).

    ```python
    from dreamgym_sdk.integrations.textworld import load_games, tasks_with_initial_states

    tasks = await tasks_with_initial_states(load_games("tw_games"))
    ```

    Args:
        games: the games, in the order of the returned tasks.
        observation: ``"abstract"`` (default) or ``"raw"``, as :class:`TextWorldEnv` takes it.
        mapper: builds the abstract state; defaults to ``TextWorldStateMapper()``.

    Raises:
        MissingExtraError: the ``textworld`` extra is not installed.
    """
    tasks: list[Task] = []
    async with TextWorldEnv(max_steps=1, observation=observation, mapper=mapper, include_facts=False) as env:
        for game in games:
            state, _ = await env.reset(task=game.to_task())
            tasks.append(game.to_task(initial_state=state))
    return tasks
