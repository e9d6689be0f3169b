"""The demo's pieces: its settings, regrouping offline data, the summary over seeds, the plot.

The whole pipeline runs in CI as ``dreamgym demo --quick`` (a few minutes); these tests check the parts
whose mistakes a run would not show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from dreamgym_sdk.cli import app
from dreamgym_sdk.demo import DemoConfig
from dreamgym_sdk.demo.data import episodes_of
from dreamgym_sdk.demo.report import compare, differences_table, plot_results, results_table, summarise
from dreamgym_sdk.integrations.textworld import is_textworld_available
from dreamgym_sdk.training.evaluate import EvalReport, wilson_interval
from dreamgym_sdk.types import Source, Task, Transition


def report(successes: int, episodes: int = 40) -> EvalReport:
    return EvalReport(
        episodes=episodes,
        successes=successes,
        success_rate=successes / episodes,
        ci95=wilson_interval(successes, episodes),
        mean_reward=1.0,
        mean_steps=6.0,
        real_transitions=episodes * 6,
    )


def test_quick_preset_is_small_and_overridable() -> None:
    quick = DemoConfig.quick(rl_iterations=4)
    full = DemoConfig()
    assert quick.rl_iterations == 4 and quick.train_games < full.train_games
    assert quick.experience_variants == {"full": 1.0} and sum(full.experience_variants.values()) == 1.0
    with pytest.raises(ValidationError):
        DemoConfig(experience_variants={"no-planning": 1.0})  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValidationError, match="positive sum"):
        DemoConfig(experience_variants={"full": 0.0})
    with pytest.raises(ValidationError):
        DemoConfig(seeds=(0, 0))
    with pytest.raises(ValidationError):
        DemoConfig(group_size=1)  # GRPO needs groups
    with pytest.raises(ValidationError, match="held_out_seed"):
        DemoConfig(train_games=60, held_out_seed=59)  # would evaluate on a training game


@pytest.mark.skipif(not is_textworld_available(), reason="needs textworld")
async def test_held_out_games_start_at_held_out_seed(tmp_path: Path) -> None:
    from dreamgym_sdk.demo.data import make_games

    config = DemoConfig(train_games=2, held_out_games=1)
    train, held_out = await make_games(config, tmp_path, lambda _: None)
    assert [g.seed for g in train] == [0, 1] and [g.seed for g in held_out] == [2]
    fresh = config.model_copy(update={"held_out_seed": 1000})
    train, held_out = await make_games(fresh, tmp_path, lambda _: None)
    assert [g.seed for g in train] == [0, 1] and [g.seed for g in held_out] == [1000]


def test_cli_rejects_invalid_settings_before_doing_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "run"), "--set", "rl_iterations=0"])
    assert result.exit_code == 2
    assert "rl_iterations" in result.output
    assert not (tmp_path / "run").exists()
    # the games are a nested section: dotted keys reach it, and its own rules are checked up front
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "run"), "--set", "game.recipe=2", "--set", "game.take=3"]
    )
    assert result.exit_code == 2 and "take (3) cannot exceed recipe" in result.output
    assert not (tmp_path / "run").exists()
    assert DemoConfig.model_validate({"game": {"recipe": 2, "take": 2, "cut": True}}).game.slug() == (
        "cooking-train-r2t2g1-cut"
    )


@pytest.mark.parametrize(
    ("flag", "model", "message"),
    [
        ("--experience-model", "hf:/no/such/model", "no such file or directory '/no/such/model'"),
        ("--experience-model", "opnai/gpt-4o-mini", "did you mean openai/...?"),
        ("--policy-model", "no-such-dir", "no such file or directory 'no-such-dir'"),
    ],
)
def test_a_mistyped_model_fails_at_once_and_records_nothing(
    tmp_path: Path, flag: str, model: str, message: str
) -> None:
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path / "run"), flag, model])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_offline_transitions_regroup_into_ordered_episodes() -> None:
    task = Task(id="g1", instruction="cook", environment="textworld")

    def step(episode: str, i: int) -> Transition:
        return Transition(task_id="g1", episode_id=episode, step=i, state=f"s{i}", action=f"a{i}",
                          next_state=f"s{i + 1}", reward=float(i == 2), terminated=i == 2, success=i == 2,
                          source=Source.REAL)  # fmt: skip

    episodes = episodes_of(
        [step("e2", 1), step("e1", 0), step("e2", 0), step("e1", 1), step("e1", 2)], {"g1": task}
    )
    assert [(e.id, [t.step for t in e.transitions]) for e in episodes] == [("e2", [0, 1]), ("e1", [0, 1, 2])]
    assert episodes[1].initial_state == "s0" and episodes[1].success and not episodes[0].success


def test_summary_over_seeds_uses_a_t_interval_and_pools_episodes() -> None:
    rows = summarise({"sft": [report(10), report(14), report(12)]}, {"sft": [0, 0, 0]})
    [row] = rows
    assert row.seeds == 3 and row.success_rate == pytest.approx(0.3)
    half = 4.303 * 0.05 / math.sqrt(3)  # t(2) * sd / sqrt(n); sd of (0.25, 0.35, 0.30) is 0.05
    assert row.ci95 == pytest.approx((0.3 - half, 0.3 + half), abs=1e-4)  # 4.303 is t(2) rounded
    assert row.pooled_ci95 == pytest.approx(wilson_interval(36, 120))


def test_t_quantiles_hold_for_any_number_of_seeds() -> None:
    from dreamgym_sdk.demo.report import t95

    assert t95(2) == pytest.approx(4.303, abs=1e-3)
    assert t95(10) == pytest.approx(2.228, abs=1e-3)  # not the normal 1.96: 12% wider at 11 seeds
    assert t95(10_000) == pytest.approx(1.960, abs=1e-3)


def test_one_seed_keeps_its_wilson_interval_and_arms_stay_in_order() -> None:
    rows = summarise({"dreamgym": [report(20)], "random": [report(1)]}, {"dreamgym": [0], "random": [0]})
    assert [r.arm for r in rows] == ["random", "dreamgym"]
    assert rows[1].ci95 == wilson_interval(20, 40)


def test_the_comparisons_pair_the_same_games_over_seeds() -> None:
    def on_games(wins: int) -> EvalReport:
        return report(wins, 10).model_copy(update={"outcomes": {f"g{i}": [i < wins] for i in range(10)}})

    reports = {"sft": [on_games(4), on_games(5)], "dreamgym": [on_games(6), on_games(7)], "real-rl": []}
    differences = compare(reports)
    assert list(differences) == ["dreamgym − sft"]  # an arm without reports is left out
    d = differences["dreamgym − sft"]
    assert d.tasks == 20 and d.difference == pytest.approx(0.2) and 0 < d.ci95[0] < 0.2 < d.ci95[1]
    assert differences_table(differences, "greedy").row_count == 1


def test_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = summarise(
        {"random": [report(0)], "real-rl": [report(20)], "dreamgym-s2r": [report(22)]},
        {"random": [0], "real-rl": [2000], "dreamgym-s2r": [150]},
    )
    curve = [{"iteration": 1.0, "success_rate": 0.2}, {"iteration": 2.0, "success_rate": 0.4}]
    curves = {"real-rl": [curve], "dreamgym-s2r": [curve[:1]]}
    path = plot_results({"greedy": rows, "sampled": rows}, curves, tmp_path / "plot.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert results_table(rows, 1000, "sampled").row_count == 3


def test_a_run_directory_made_with_other_settings_is_refused(tmp_path: Path) -> None:
    (tmp_path / "demo-config.json").write_text(
        json.dumps(DemoConfig.quick().model_dump(mode="json", exclude={"seeds"}))
    )
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path), "--set", "rl_iterations=5"])
    assert result.exit_code == 2
    assert "rl_iterations" in result.output and "other settings" in result.output


def test_reporting_idle_arms_is_not_a_setting_of_the_run(tmp_path: Path) -> None:
    # the error for an arm that trained on nothing asks for a re-run with allow_idle_arms=true: same run
    from dreamgym_sdk.demo import _Demo  # pyright: ignore[reportPrivateUsage]

    config = DemoConfig.quick()
    (tmp_path / "demo-config.json").write_text(json.dumps(config.model_dump(mode="json", exclude={"seeds"})))
    flipped = config.model_copy(update={"allow_idle_arms": not config.allow_idle_arms})
    _Demo(flipped, tmp_path, Console())._check_settings()  # pyright: ignore[reportPrivateUsage]


def test_an_arm_that_trained_on_nothing_is_named() -> None:
    from dreamgym_sdk.demo import _idle  # pyright: ignore[reportPrivateUsage]

    trained = [
        {"episodes": 8.0, "train/optimizer_steps": 1.0},
        {"episodes": 8.0, "train/optimizer_steps": 0.0},
    ]
    no_steps = [{"episodes": 8.0, "train/optimizer_steps": 0.0}] * 2
    no_episodes = [{"episodes": 0.0, "failed_episodes": 4.0}] * 2
    assert _idle(trained) == []
    assert _idle([]) == ["ran no iteration (its budget did not cover one group's worst case)"]
    assert _idle(no_steps) == ["took no optimizer step (every group had equal rewards)"]
    assert _idle(no_episodes) == ["played no usable episode (8 dropped)"]


def test_the_curriculum_line_counts_decisions_and_shares() -> None:
    from dreamgym_sdk.demo import _curriculum_line  # pyright: ignore[reportPrivateUsage]

    metrics = [
        {"tasks_proposed": 8.0, "tasks_accepted": 2.0, "tasks_rejected": 6.0, "synthetic_task_share": 0.0,
         "tasks_rejected/not_selected": 6.0},
        {"tasks_proposed": 4.0, "tasks_accepted": 1.0, "tasks_rejected": 3.0, "synthetic_task_share": 0.25,
         "tasks_rejected/not_selected": 2.0, "tasks_rejected/duplicate": 1.0},
    ]  # fmt: skip
    assert _curriculum_line(0, metrics) == (
        "seed 0: DreamGym's curriculum proposed 12 variations, accepted 3, rejected 9 (1 duplicate, 8 not"
        " selected); generated tasks' share per update: 0% 25%"
    )


def test_results_record_the_package_versions() -> None:
    from dreamgym_sdk._versions import VERSIONED, package_versions

    versions = package_versions()
    assert set(versions) == {"python", *VERSIONED}
    assert versions["dreamgym-sdk"] != "not installed"


async def test_calling_run_demo_leaves_no_global_state_behind(tmp_path: Path) -> None:
    import warnings

    transformers_logging = pytest.importorskip("transformers.utils.logging")
    hub = pytest.importorskip("huggingface_hub.utils")
    from dreamgym_sdk.demo import run_demo
    from dreamgym_sdk.errors import ConfigError

    (tmp_path / "demo-config.json").write_text(
        json.dumps(DemoConfig.quick().model_dump(mode="json", exclude={"seeds"}))
    )
    before = (
        list(warnings.filters),
        transformers_logging.get_verbosity(),
        transformers_logging.is_progress_bar_enabled(),
        hub.are_progress_bars_disabled(),
    )
    with pytest.raises(ConfigError, match="other settings"):  # fails inside, after quieting the libraries
        await run_demo(DemoConfig.quick(rl_iterations=5), tmp_path)
    after = (
        list(warnings.filters),
        transformers_logging.get_verbosity(),
        transformers_logging.is_progress_bar_enabled(),
        hub.are_progress_bars_disabled(),
    )
    assert after == before


def test_the_throughput_line_names_real_and_synthetic_steps() -> None:
    from dreamgym_sdk.demo import _throughput_line  # pyright: ignore[reportPrivateUsage]

    line = _throughput_line({"real-rl": 16.84, "dreamgym": 5.02})
    assert line == "rollout steps per second (mean over updates): real-rl 16.8 real, dreamgym 5.0 synthetic"
