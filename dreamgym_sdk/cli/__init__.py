"""The ``dreamgym`` command line.

Each command group lives in its own module of this package and is registered here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from dreamgym_sdk._version import __version__
from dreamgym_sdk.cli._options import DEBUG_ENV, RootGroup, command_group, set_cli_options
from dreamgym_sdk.cli.collect import app as collect_app
from dreamgym_sdk.cli.demo import demo
from dreamgym_sdk.cli.distill import app as distill_app
from dreamgym_sdk.cli.fidelity import app as fidelity_app
from dreamgym_sdk.cli.judge import app as judge_app
from dreamgym_sdk.cli.replay import app as replay_app
from dreamgym_sdk.cli.rescore import rescore
from dreamgym_sdk.cli.serve import serve
from dreamgym_sdk.cli.train import eval_app, train_app

__all__ = ["app"]

app = command_group(
    "dreamgym",
    help="Train LLM agents with reinforcement learning on synthetic experience (DreamGym).",
    cls=RootGroup,
)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dreamgym-sdk {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            envvar="DREAMGYM_LOG_LEVEL",
            help="Print the SDK's logs from this level on, for any command (serve has its own setting).",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar=DEBUG_ENV, help="Show the traceback of errors that are otherwise one line."
        ),
    ] = False,
) -> None:
    """Train LLM agents with reinforcement learning on synthetic experience (DreamGym)."""
    set_cli_options(ctx, debug=debug, log_level=log_level.value if log_level else None)


app.command("demo")(demo)
app.add_typer(collect_app, name="collect")
app.add_typer(judge_app, name="judge")
app.add_typer(distill_app, name="distill")
app.add_typer(fidelity_app, name="eval-fidelity")
app.add_typer(replay_app, name="replay")
app.command("rescore")(rescore)
app.command("serve")(serve)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
