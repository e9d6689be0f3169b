"""Shared data of the distillation tests: three tiny TextWorld games (the session cache the other
TextWorld tests use), a scripted episode with hand-checkable steps, other episodes and their ground truth."""

# Static checkers cannot follow the package-dir mapping integrations/ -> dreamgym_sdk.integrations.
# pyright: reportMissingImports=false

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest
from distill_helpers import TWData, play_episodes

from dreamgym_sdk._imports import is_available
from dreamgym_sdk.integrations.textworld import CookingSpec, GameInfo, generate_games


@pytest.fixture(scope="session")
def tw_games(tmp_path_factory: pytest.TempPathFactory) -> list[GameInfo]:
    """The three smallest cooking games (seeds 0, 1, 2)."""
    if not is_available("textworld"):
        pytest.skip("needs the textworld extra: pip install 'dreamgym-sdk[textworld]'")
    game_dir: Path = tmp_path_factory.getbasetemp() / "tw-games"
    return anyio.run(functools.partial(generate_games, CookingSpec(), game_dir, (0, 1, 2), workers=2))


@pytest.fixture(scope="session")
def tw_data(tw_games: list[GameInfo]) -> TWData:
    return anyio.run(play_episodes, tw_games)
