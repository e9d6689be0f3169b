"""``dreamgym train`` (the DreamGym loop from one config file) and ``dreamgym eval`` (real games)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dreamgym_sdk.cli._options import (
    FileFormat,
    FormatOption,
    PrintConfigOption,
    command_group,
    configure_command_logging,
    fail,
    interrupt_says,
    overrides,
    run_async,
)
from dreamgym_sdk.cli._options import print_config as show_config
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.providers.registry import check_model_string

__all__ = ["eval_app", "train_app"]

train_app = command_group(
    no_args_is_help=False, help="Train a policy with the DreamGym loop, configured by one TOML file."
)
eval_app = command_group(
    no_args_is_help=False, help="Evaluate a policy on real games: success rate with a 95% interval."
)
_err = Console(stderr=True)


@train_app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help="TOML config file (see TrainConfig; examples/train.toml).")
    ] = None,
    run_dir: Annotated[str | None, typer.Option(help="Key run_dir.")] = None,
    tasks: Annotated[str | None, typer.Option(help="Key tasks: seed tasks as JSONL.")] = None,
    experience_model: Annotated[str | None, typer.Option(help="Key experience.model.")] = None,
    api_base: Annotated[str | None, typer.Option(help="Key experience.api_base.")] = None,
    replay: Annotated[str | None, typer.Option(help="Key replay.uri: LanceDB buffer to ground on.")] = None,
    policy: Annotated[str | None, typer.Option(help="Key policy.path.")] = None,
    algorithm: Annotated[str | None, typer.Option(help="Key algorithm: grpo or ppo.")] = None,
    iterations: Annotated[int | None, typer.Option(help="Key loop.budget.iterations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Key loop.seed.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any other key: --set loop.group_size=8 (repeatable).")
    ] = None,
    print_config: PrintConfigOption = False,
    format_: FormatOption = FileFormat.TOML,
) -> None:
    """Run (or resume) the DreamGym loop; metrics go to RUN_DIR/metrics.jsonl."""
    from dreamgym_sdk.training.config_file import load_train_config

    named: dict[str, Any] = {
        "run_dir": run_dir, "tasks": tasks, "experience.model": experience_model,
        "experience.api_base": api_base, "replay.uri": replay, "policy.path": policy,
        "algorithm": algorithm, "loop.budget.iterations": iterations, "loop.seed": seed,
    }  # fmt: skip
    cfg = load_train_config(config, overrides(named, set_))
    if print_config:
        show_config(cfg, format_)
        return
    # a typo fails now, not at the first synthetic step
    check_model_string(cfg.experience.model, api_base=cfg.experience.api_base, bare_directories=True)
    check_model_string(f"hf:{cfg.policy.path}")
    from dreamgym_sdk.training.run import train as run_training

    configure_command_logging(ctx, "WARNING")  # dropped episodes and idle updates are worth seeing
    with interrupt_says(f"the checkpoints so far are in {cfg.run_dir}: the same command resumes the run"):
        history = run_async(run_training, cfg)
    typer.echo(json.dumps({"run_dir": cfg.run_dir, "iterations_run": len(history), "last": history[-1:]}))


def _make_policy(spec: str, seed: int) -> Policy:
    if spec == "random":
        from dreamgym_sdk.policies.baselines import RandomPolicy

        return RandomPolicy(seed=seed)
    if spec.startswith("hf:"):
        from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig, saved_policy_config

        path = spec.removeprefix("hf:")
        # a saved policy acts as it was trained to (prompt style, admissible constraint); evaluated greedy
        acting = saved_policy_config(path) or HFPolicyConfig(constrain_to_admissible=True)
        config = acting.model_copy(update={"temperature": 0.0, "record_samples": False, "seed": seed})
        return HFPolicy.from_pretrained(path, config)
    from dreamgym_sdk.policies.llm import LLMPolicy
    from dreamgym_sdk.providers.registry import get_provider

    return LLMPolicy(get_provider(spec))


@eval_app.callback(invoke_without_command=True)
def evaluate_games(
    games: Annotated[
        Path,
        typer.Option(exists=True, file_okay=False, help="A directory of TextWorld games (*.z8 with .json)."),
    ],
    policy: Annotated[str, typer.Option(help="random, hf:<path> (local) or any model string (LLM).")],
    episodes: Annotated[int, typer.Option(help="Episodes per game.", min=1)] = 1,
    max_steps: Annotated[int, typer.Option(help="Step limit per episode.", min=1)] = 50,
    concurrency: Annotated[int, typer.Option(help="Episodes at once.", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Base seed.")] = 0,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")
    ] = None,
) -> None:
    """Play POLICY on every game of GAMES and report the success rate with its Wilson 95% interval."""
    from dreamgym_sdk.integrations.textworld import TextWorldEnv, load_games
    from dreamgym_sdk.training.evaluate import evaluate

    infos = load_games(games)
    if not infos:
        fail(ConfigError(f"no TextWorld games in {games}"))
    if policy != "random":
        check_model_string(policy)
    try:
        the_policy = _make_policy(policy, seed)
    except OSError as exc:
        fail(ConfigError(f"cannot load policy {policy!r}: {exc}"))
    tasks = [g.to_task() for g in infos]
    with interrupt_says("nothing was written"):
        report = run_async(
            lambda: evaluate(
                lambda group: TextWorldEnv(max_steps=max_steps), the_policy, tasks,
                episodes_per_task=episodes, max_concurrency=concurrency, seed=seed,
            )
        )  # fmt: skip
    text = report.model_dump_json(indent=2)
    typer.echo(text)
    if output is not None:
        output.write_text(text)
    table = Table(title=f"{policy} on {len(infos)} games")
    for column in ("episodes", "success rate", "95% interval", "mean reward", "mean steps"):
        table.add_column(column)
    low, high = report.ci95
    table.add_row(str(report.episodes), f"{report.success_rate:.1%}", f"{low:.1%} – {high:.1%}",
                  f"{report.mean_reward:.2f}", f"{report.mean_steps:.1f}")  # fmt: skip
    _err.print(table)
