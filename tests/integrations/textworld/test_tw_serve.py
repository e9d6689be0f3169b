"""Real TextWorld games over the serve protocol (``dreamgym serve --games DIR``): a served game plays as the
local ``TextWorldEnv`` does, and a client can only name the server's games, never a file."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from dreamgym_sdk.integrations.textworld import GameCatalogEnv, GameInfo, TextWorldEnv
from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig
from dreamgym_sdk.serve import Client, EnvServer, ServeConfig
from dreamgym_sdk.serve.errors import ServeError
from dreamgym_sdk.types import Source

pytest.importorskip("fastapi")

TOKEN = "tok-textworld-5e1f0c7a9b3d"


async def _local(game: GameInfo, actions: list[str]) -> list[tuple[str, float, bool, bool]]:
    async with TextWorldEnv(game, max_steps=30) as env:
        await env.reset()
        return [tuple(await env.step(a))[:4] for a in actions]  # type: ignore[misc]


async def test_a_served_game_plays_as_the_local_one(cooking_games: list[GameInfo]) -> None:
    config = ServeConfig(port=0, tokens=(TOKEN,), max_steps=30)
    game = cooking_games[0]
    actions = ["look", "inventory", *game.walkthrough]
    async with (
        EnvServer(lambda: GameCatalogEnv(cooking_games, max_steps=30), config) as server,
        Client(server.url, token=TOKEN) as env,
    ):
        observation, info = await env.reset(task=game.id)
        served = [tuple(await env.step(a))[:4] for a in actions]
    assert info["task"].id == game.id
    assert observation.startswith("location:")
    assert served == await _local(game, actions)
    assert served[-1][2] and served[-1][1] > 0  # the walkthrough wins the game over the wire too


async def test_a_client_names_games_but_never_files(cooking_games: list[GameInfo], tmp_path: Path) -> None:
    game, other = cooking_games[0], cooking_games[1]
    async with GameCatalogEnv([game], max_steps=5) as env:
        # a task that names a served game by id plays the server's copy, whatever path it carries
        forged = game.to_task().model_copy(update={"metadata": {"game_path": str(other.path)}})
        _, info = await env.reset(task=forged)
        assert info["task"].metadata["game_path"] == str(game.path)
        with pytest.raises(ValueError, match="no served game"):
            await env.reset(task=other.to_task())
        with pytest.raises(ValueError, match="name a game"):
            await env.reset()
    config = ServeConfig(port=0, tokens=(TOKEN,))
    async with (
        EnvServer(lambda: GameCatalogEnv([game]), config) as server,
        Client(server.url, token=TOKEN) as client,
    ):
        with pytest.raises(ServeError, match="no served game"):
            await client.reset(task=str(tmp_path / "any.z8"))


async def test_dreamgym_serve_games_admits_the_real_episodes(
    cooking_games: list[GameInfo], tmp_path: Path
) -> None:
    game = cooking_games[0]
    uri = tmp_path / "buffer"
    settings = tmp_path / "serve.toml"
    settings.write_text(f'[replay]\nuri = "{uri}"\nembedder = "hashing"\n\n[admission]\n')
    command = [sys.executable, "-m", "dreamgym_sdk.cli.serve", "--config", str(settings)]
    command += ["--games", str(game.path.parent), "--port", "0", "--max-steps", "30"]
    async with await anyio.open_process(
        command, env={**os.environ, "DREAMGYM_SERVE_TOKENS": TOKEN}
    ) as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(120):
            while b"listening on " not in seen or not seen.endswith(b"\n"):
                seen += await process.stderr.receive()
        url = seen.split(b"listening on ")[1].split()[0].decode()
        async with Client(url, token=TOKEN) as env:
            await env.reset(task=game.id)
            last = [await env.step(action) for action in game.walkthrough][-1]
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            assert await process.wait() == 0
    assert last.terminated
    async with LanceDBReplayBuffer(ReplayConfig(uri=str(uri), embedder="hashing", read_only=True)) as buffer:
        stored = sorted(await buffer.sample(100), key=lambda t: t.step)
    assert [t.action for t in stored] == list(game.walkthrough)
    assert {(t.source, t.task_id) for t in stored} == {(Source.REAL, game.id)}
    assert stored[-1].success
