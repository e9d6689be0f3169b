"""``dreamgym eval`` on real TextWorld games."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from dreamgym_sdk.cli import app
from dreamgym_sdk.integrations.textworld import CookingSpec, generate_games, is_textworld_available


@pytest.fixture(scope="module")
def game_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not is_textworld_available():
        pytest.skip("needs the textworld extra")
    directory = tmp_path_factory.getbasetemp() / "tw-games"  # the cache the other TextWorld tests share
    anyio.run(functools.partial(generate_games, CookingSpec(), directory, (0, 1), workers=2))
    return directory


def test_eval_reports_success_rate_with_interval(game_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["eval", "--games", str(game_dir), "--policy", "random", "--max-steps", "5", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["episodes"] >= 2
    low, high = report["ci95"]
    assert low <= report["success_rate"] <= high
    assert report["real_transitions"] > 0


def test_eval_rejects_an_empty_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--games", str(tmp_path), "--policy", "random"])
    assert result.exit_code == 2 and "no TextWorld games" in result.output
