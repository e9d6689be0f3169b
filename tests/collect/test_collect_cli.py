"""``dreamgym collect textworld``."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dreamgym_sdk.cli.collect import app, build_policy, parse_policy_mix
from dreamgym_sdk.collect import (
    CollectionSummary,
    ExpertPolicy,
    Granularity,
    MixturePolicy,
    RandomAdmissiblePolicy,
    read_jsonl,
)
from dreamgym_sdk.integrations.textworld import GameInfo

runner = CliRunner()


def test_parse_policy_mix() -> None:
    assert parse_policy_mix("expert") == [("expert", 1.0)]
    assert parse_policy_mix(" expert=0.7, noisy=0.2,random=0.1 ") == [
        ("expert", 0.7),
        ("noisy", 0.2),
        ("random", 0.1),
    ]
    for bad in ("", "oracle", "expert=x", "expert=0"):
        with pytest.raises(typer.BadParameter):
            parse_policy_mix(bad)


def test_build_policy() -> None:
    assert isinstance(
        build_policy([("expert", 1.0)], epsilon=0.3, seed=0, per=Granularity.EPISODE), ExpertPolicy
    )
    noisy = build_policy([("noisy", 1.0)], epsilon=0.3, seed=0, per=Granularity.EPISODE)
    assert isinstance(noisy, RandomAdmissiblePolicy) and noisy.epsilon == 0.3
    mixture = build_policy([("expert", 2.0), ("random", 1.0)], epsilon=0.3, seed=5, per=Granularity.STEP)
    assert isinstance(mixture, MixturePolicy) and mixture.weights == [2.0, 1.0] and mixture.seed == 5


def test_collects_into_jsonl_and_prints_a_summary(tw_games: list[GameInfo], tmp_path: Path) -> None:
    out = tmp_path / "real.jsonl"
    summary_file = tmp_path / "summary.json"
    args = [
        "textworld", "--game-dir", str(tw_games[0].path.parent), "--games", "2", "--output", str(out),
        "--policy", "expert=0.5,noisy=0.5", "-k", "2", "--max-steps", "10", "--no-progress",
        "--summary-json", str(summary_file),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = CollectionSummary.model_validate_json(result.stdout)
    assert summary == CollectionSummary.model_validate_json(summary_file.read_text())
    assert summary.episodes == 4 and set(summary.per_game) == {g.id for g in tw_games[:2]}
    assert len(read_jsonl(out)) == summary.transitions
    assert "Collected" in result.stderr


def test_collecting_again_adds_nothing_twice(tw_games: list[GameInfo], tmp_path: Path) -> None:
    out = tmp_path / "real.jsonl"
    args = [
        "textworld", "--games-from", str(tw_games[0].path.parent), "--games", "2", "--output", str(out),
        "--policy", "expert=0.5,noisy=0.5", "-k", "2", "--no-progress",
    ]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    first = read_jsonl(out)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert read_jsonl(out) == first
    assert "4 of 4 episodes were already in" in " ".join(again.stderr.split())
    more = runner.invoke(app, [*args[:4], "3", *args[5:]])  # one more game: only its episodes are added
    assert more.exit_code == 0
    added = read_jsonl(out)[len(first) :]
    assert added and {t.task_id for t in added} == {tw_games[2].to_task().id}


def test_plays_the_games_of_a_directory(tw_games: list[GameInfo], tmp_path: Path) -> None:
    out = tmp_path / "real.jsonl"
    args = ["textworld", "--games-from", str(tw_games[0].path.parent), "--output", str(out), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = CollectionSummary.model_validate_json(result.stdout)
    assert {g.id for g in tw_games} <= set(summary.per_game)


def test_bad_options_are_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["textworld", "--policy", "oracle", "--game-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown policy" in result.output
    result = runner.invoke(app, ["textworld", "--take", "3", "--recipe", "1", "--game-dir", str(tmp_path)])
    assert result.exit_code == 2 and "take" in result.output
