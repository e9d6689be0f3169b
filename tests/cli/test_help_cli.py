"""The command line's help and entry points, as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dreamgym_sdk._version import __version__
from dreamgym_sdk.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("command", "bracketed"),
    [
        (["replay", "stats"], "[config: uri]"),
        (["replay", "import"], "[config: embedder]"),
        (["replay", "stats"], "(a [replay] table is used if present)"),
    ],
)
def test_help_prints_brackets_as_written(command: list[str], bracketed: str) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert bracketed in " ".join(result.output.split())  # as wrapped to the terminal's width


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "demo",
        "serve",
        "collect",
        "judge",
        "distill",
        "eval-fidelity",
        "replay",
        "train",
        "eval",
    ):
        assert command in result.output
        assert runner.invoke(app, [command, "--help"]).exit_code == 0, command


def test_python_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dreamgym_sdk", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"dreamgym-sdk {__version__}"


def test_each_short_flag_has_one_meaning() -> None:
    """-k is the episodes per game wherever it exists, -o the output, -m the model."""
    meanings: dict[str, set[str]] = {}

    def walk(command: Any) -> None:
        for sub in getattr(command, "commands", {}).values():  # a group (typer's own click types)
            walk(sub)
        for param in command.params:
            for flag in param.opts:
                if len(flag) == 2:
                    meanings.setdefault(flag, set()).add(param.name or "")

    walk(typer.main.get_command(app))
    assert {flag: names for flag, names in meanings.items() if len(names) > 1} == {}


def test_importing_the_main_module_runs_nothing() -> None:
    """Tools that walk the package (the core-install check, documentation builders) import it."""
    import importlib

    importlib.import_module("dreamgym_sdk.__main__")  # would print the help and exit if it ran the CLI
