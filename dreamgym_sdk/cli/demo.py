"""``dreamgym demo``: the project's main job, end to end on a CPU (see :mod:`dreamgym_sdk.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dreamgym_sdk.cli._options import interrupt_says, overrides, run_async
from dreamgym_sdk.config_files import load_config

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option(help="Run directory; running again resumes it.")] = Path(
        "dreamgym-demo"
    ),
    quick: Annotated[
        bool, typer.Option(help="A reduced run (a few minutes) that checks the pipeline.")
    ] = False,
    seeds: Annotated[int | None, typer.Option(help="Train every arm with seeds 0..N-1.", min=1)] = None,
    experience_model: Annotated[
        str | None,
        typer.Option(help="Skip distillation: a distilled directory, or a LiteLLM/vLLM model string."),
    ] = None,
    policy_model: Annotated[
        str | None, typer.Option(help="Start the policy from this Hugging Face model instead of a tiny one.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Where the policy runs and trains, e.g. cuda.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Any DemoConfig field: --set rl_iterations=20, --set game.recipe=2 (repeatable)."
        ),
    ] = None,
) -> None:
    """Train a TextWorld agent with DreamGym and compare it with SFT, real-environment RL and random play.

    Generates games, collects offline data, distils an experience model, trains every arm and evaluates
    them on held-out real games; prints a table and writes OUT/results.json and OUT/results.png.
    """
    from dreamgym_sdk.demo import DemoConfig, run_demo

    fields: dict[str, Any] = {
        "experience_model": experience_model, "policy_model": policy_model, "device": device,
        "seeds": tuple(range(seeds)) if seeds else None,
    }  # fmt: skip
    settings = overrides(fields, set_)
    preset = DemoConfig.QUICK if quick else {}
    config = load_config(DemoConfig, None, preset | settings, what="demo settings")
    with interrupt_says(f"the finished stages are kept in {out}: the same command resumes the run"):
        run_async(run_demo, config, out)
