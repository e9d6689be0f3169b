"""Games shared by the TextWorld tests: generated once per session (a few seconds), then cached."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from dreamgym_sdk.integrations.textworld import (
    CookingSpec,
    CustomSpec,
    GameInfo,
    generate_games,
    is_textworld_available,
)

COOKING = CookingSpec()  # the smallest cooking game: one room, one ingredient to fetch
CUSTOM = CustomSpec(world_size=2, nb_objects=3, quest_length=2)
COOKING_SEEDS = (0, 1, 2)


@pytest.fixture(scope="session")
def game_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's game cache (shared with tests/collect through pytest's base temp dir)."""
    if not is_textworld_available():
        pytest.skip("needs the textworld extra: pip install 'dreamgym-sdk[textworld]'")
    return tmp_path_factory.getbasetemp() / "tw-games"


@pytest.fixture(scope="session")
def cooking_games(game_dir: Path) -> list[GameInfo]:
    return anyio.run(functools.partial(generate_games, COOKING, game_dir, COOKING_SEEDS, workers=2))


@pytest.fixture(scope="session")
def custom_game(game_dir: Path) -> GameInfo:
    return anyio.run(functools.partial(generate_games, CUSTOM, game_dir, [0]))[0]
