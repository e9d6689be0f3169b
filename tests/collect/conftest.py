"""TextWorld games for the collector tests: the same session cache as tests/integrations/textworld, so
a full run generates them once."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest

from dreamgym_sdk.integrations.textworld import CookingSpec, GameInfo, generate_games, is_textworld_available


@pytest.fixture(scope="session")
def tw_games(tmp_path_factory: pytest.TempPathFactory) -> list[GameInfo]:
    """The three smallest cooking games (seeds 0, 1, 2)."""
    if not is_textworld_available():
        pytest.skip("needs the textworld extra: pip install 'dreamgym-sdk[textworld]'")
    game_dir: Path = tmp_path_factory.getbasetemp() / "tw-games"
    return anyio.run(functools.partial(generate_games, CookingSpec(), game_dir, (0, 1, 2), workers=2))
