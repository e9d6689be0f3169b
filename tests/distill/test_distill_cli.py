"""``dreamgym distill`` and ``dreamgym eval-fidelity`` on tiny inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from distill_helpers import TWData, needs_textworld, needs_training
from typer.testing import CliRunner

from dreamgym_sdk.cli.distill import app as distill_app
from dreamgym_sdk.cli.distill import load_config, parse_mix
from dreamgym_sdk.cli.fidelity import app as fidelity_app
from dreamgym_sdk.cli.fidelity import parse_variants
from dreamgym_sdk.distill import DistilledModelCard, FidelityRun, read_annotated, read_examples

runner = CliRunner()


def test_parsers(tmp_path: Path) -> None:
    assert parse_mix("full=0.6, no-retrieval") == {"full": 0.6, "no-retrieval": 1.0}
    assert parse_variants("all") == ["full", "no-history", "no-retrieval", "no-reasoning"]
    assert parse_variants("full,no-reasoning") == ["full", "no-reasoning"]
    for bad in ("", "everything", "full=x"):
        with pytest.raises(typer.BadParameter):
            parse_mix(bad)
    with pytest.raises(typer.BadParameter):
        parse_variants("full,nope")
    config = tmp_path / "distill.toml"
    config.write_text("[dataset]\nk = 1\n\n[distill]\nmax_steps = 3\n\n[distill.student]\nlayers = 1\n")
    assert load_config(config) == {"dataset": {"k": 1}, "distill": {"max_steps": 3, "student": {"layers": 1}}}
    config.write_text("[model]\nx = 1\n")
    with pytest.raises(typer.BadParameter):
        load_config(config)


def test_the_apps_register_under_the_dreamgym_command() -> None:
    parent = typer.Typer()
    parent.add_typer(distill_app, name="distill")
    parent.add_typer(fidelity_app, name="eval-fidelity")
    for args in (["distill", "--help"], ["distill", "train", "--help"], ["eval-fidelity", "--help"]):
        result = runner.invoke(parent, args)
        assert result.exit_code == 0, result.output
    assert "--games-from" in runner.invoke(parent, ["eval-fidelity", "--help"]).output
    missing = runner.invoke(parent, ["eval-fidelity", "--model", "hf:x"])
    assert missing.exit_code != 0 and "--games-from" in missing.output


@needs_textworld
@needs_training
def test_annotate_dataset_train_and_evaluate(tw_data: TWData, tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("".join(t.model_dump_json() + "\n" for t in tw_data.transitions))
    games = str(tw_data.games[0].path.parent)
    annotated = tmp_path / "annotated.jsonl"

    result = runner.invoke(
        distill_app, ["annotate", str(real), "--games-from", games, "-o", str(annotated), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    n = len(tw_data.transitions)
    assert summary["annotated"] == summary["with_ground_truth"] == n and summary["not_admissible"] > 0
    data = read_annotated(annotated)
    assert all(t.reasoning for t in data.transitions)
    assert (tmp_path / "annotated.tasks.jsonl").is_file()

    sft = tmp_path / "sft.jsonl"
    args = ["dataset", str(annotated), "-o", str(sft), "--k", "1", "--embedder", "hashing",
            "--held-out-fraction", "0.34", "--no-progress"]  # fmt: skip
    result = runner.invoke(distill_app, args)
    assert result.exit_code == 0, result.output
    train, valid = read_examples(sft), read_examples(tmp_path / "sft.valid.jsonl")
    assert len(train) + len(valid) == n and {e.task_id for e in train}.isdisjoint({e.task_id for e in valid})
    assert train[0].prompt[1]["content"].startswith("## Task\nYou are hungry!")  # tasks from the sidecar

    model = tmp_path / "model"
    args = ["train", str(annotated), "-o", str(model), "--k", "0", "--history-window", "0",
            "--embedder", "hashing", "--max-steps", "3", "--batch-size", "8", "--hidden-size", "32",
            "--layers", "1", "--vocab-size", "300", "--no-progress"]  # fmt: skip
    result = runner.invoke(distill_app, args)
    assert result.exit_code == 0, result.output
    card = DistilledModelCard.model_validate_json(result.stdout)
    assert card.training.steps == 3 and card.dataset.k == 0 and card.distill["student"]["layers"] == 1

    # An (untrained) model still gets scored: its unusable answers count as wrong.
    held = tmp_path / "held.jsonl"
    held.write_text("".join(t.model_dump_json() + "\n" for t in tw_data.scripted))
    args = ["--model", f"hf:{model}", "--transitions", str(held), "--games-from", games, "--variants",
            "all", "--max-tokens", "16", "--max-retries", "0", "--no-progress",
            "-o", str(tmp_path / "f.json")]  # fmt: skip
    result = runner.invoke(fidelity_app, args)
    assert result.exit_code == 0, result.output
    run = FidelityRun.model_validate_json(result.stdout)
    assert [r.variant for r in run.results] == ["full", "no-history", "no-retrieval", "no-reasoning"]
    assert run.references == len(tw_data.scripted) and run.overlapping_tasks == 1
    assert run.results[0].metrics.invalid_actions.count == 1  # "eat lamp", from the replayed ground truth
    assert FidelityRun.model_validate_json((tmp_path / "f.json").read_text()) == run

    # References played on the spot from a directory of games.
    args = ["--model", f"hf:{model}", "--games-from", games, "--max-games", "1", "-k", "1",
            "--max-steps", "4", "--max-tokens", "16", "--max-retries", "0", "--no-progress"]  # fmt: skip
    result = runner.invoke(fidelity_app, args)
    assert result.exit_code == 0, result.output
    played = FidelityRun.model_validate_json(result.stdout)
    assert played.episodes == 1 and 1 <= played.references <= 4
