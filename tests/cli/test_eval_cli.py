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


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("hf:no-such-model", "no such file or directory 'no-such-model'"),
        ("opnai/gpt-4o-mini", "did you mean openai/...?"),
        ("openai/gpt-4o-mini", "needs OPENAI_API_KEY in the environment"),
    ],
)
def test_eval_names_a_bad_policy_string_in_one_line(
    game_dir: Path, policy: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["eval", "--games", str(game_dir), "--policy", policy])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_eval_asks_for_hf_before_a_directory(game_dir: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--games", str(game_dir), "--policy", str(game_dir)])
    assert result.exit_code == 2 and f"write hf:{game_dir}" in " ".join(result.output.split())


def test_eval_refuses_a_negative_episode_count(game_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "--games", str(game_dir), "--policy", "random", "--episodes", "-1"]
    )
    assert result.exit_code == 2 and "--episodes" in result.output
