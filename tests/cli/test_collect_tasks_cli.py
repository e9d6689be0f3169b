"""Tasks of TextWorld games with their real initial states: the function and ``dreamgym collect tasks``."""

# Static checkers cannot follow the package-dir mapping integrations/ -> dreamgym_sdk.integrations.
# pyright: reportMissingImports=false

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from dreamgym_sdk import Task
from dreamgym_sdk.cli import app
from dreamgym_sdk.integrations.textworld import (
    CookingSpec,
    GameInfo,
    TextWorldEnv,
    generate_games,
    is_textworld_available,
    tasks_with_initial_states,
)


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> list[GameInfo]:
    """The three smallest cooking games (the session's game cache, shared with the other TextWorld tests)."""
    if not is_textworld_available():
        pytest.skip("needs the textworld extra: pip install 'dreamgym-sdk[textworld]'")
    game_dir = tmp_path_factory.getbasetemp() / "tw-games"
    return anyio.run(functools.partial(generate_games, CookingSpec(), game_dir, (0, 1, 2), workers=2))


async def reset_state(game: GameInfo, observation: str = "abstract") -> str:
    async with TextWorldEnv(game, observation=observation) as env:
        state, _ = await env.reset()
    return state


async def test_tasks_start_from_the_real_reset_state(games: list[GameInfo]) -> None:
    tasks = await tasks_with_initial_states(games)
    assert [t.id for t in tasks] == [g.id for g in games]
    for game, task in zip(games, tasks, strict=True):
        assert task.initial_state == await reset_state(game)
        assert task.initial_state is not None and task.initial_state.startswith("location: ")
        assert task.model_copy(update={"initial_state": None}) == game.to_task()  # the game's task otherwise
    raw = await tasks_with_initial_states(games[:1], observation="raw")
    assert raw[0].initial_state == await reset_state(games[0], "raw")


async def test_the_command_writes_them(games: list[GameInfo], tmp_path: Path) -> None:
    out = tmp_path / "tasks.jsonl"
    args = ["collect", "tasks", "--games-from", str(games[0].path.parent), "-o", str(out)]
    result = await anyio.to_thread.run_sync(functools.partial(CliRunner().invoke, app, args))
    assert result.exit_code == 0, result.output
    written = [Task.model_validate_json(line) for line in out.read_text().splitlines()]
    by_id = {t.id: t for t in written}
    assert json.loads(result.stdout.splitlines()[0]) == {"tasks": len(written), "output": str(out)}
    for game in games:  # the cache may hold other tests' games too
        assert by_id[game.id].initial_state == await reset_state(game)
        assert by_id[game.id].environment == "textworld"


def test_the_command_needs_games(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["collect", "tasks", "--games-from", str(tmp_path)])
    assert result.exit_code == 2 and "no TextWorld games" in result.output
