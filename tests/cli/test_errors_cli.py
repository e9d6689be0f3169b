"""The CLI's error boundary, its root options and its config printing: an SDK error is one line, a bug
keeps its traceback, Ctrl-C says what was kept, and ``--print-config`` writes what ``--config`` reads."""

from __future__ import annotations

import logging
import os
import signal
import threading
import tomllib
from pathlib import Path

import anyio
import pytest
import typer
import yaml
from typer.testing import CliRunner

from dreamgym_sdk._stoppable import Stopped, run_stoppable
from dreamgym_sdk.cli import app
from dreamgym_sdk.cli._options import RootGroup, command_group, interrupt_says, run_async
from dreamgym_sdk.errors import ConfigError, ProviderTimeoutError
from dreamgym_sdk.serve.config import ServeConfig
from dreamgym_sdk.training.config_file import load_train_config


def _app_raising(error: BaseException, note: str | None = None) -> typer.Typer:
    """A one-command app under the root group's boundary, whose command raises ``error``."""
    demo = command_group("t", help="test", cls=RootGroup)

    @demo.command()
    def run() -> None:
        if note is None:
            raise error
        with interrupt_says(note):
            raise error

    @demo.command()
    def other() -> None:  # two commands, so the group keeps its subcommand names
        """Nothing."""

    return demo


def test_an_sdk_error_is_one_line_with_the_usage_or_failure_code() -> None:
    result = CliRunner().invoke(_app_raising(ConfigError("bad key 'x'")), ["run"])
    assert (result.exit_code, result.output.strip()) == (2, "error: bad key 'x'")
    # from a task group too: the group's only error is the one shown, named by its type
    group = ExceptionGroup("task group", [ProviderTimeoutError("no answer in 30 s")])
    result = CliRunner().invoke(_app_raising(group), ["run"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: ProviderTimeoutError: no answer in 30 s"


def test_a_bug_keeps_its_traceback_and_debug_shows_ours() -> None:
    result = CliRunner().invoke(_app_raising(ZeroDivisionError("bug")), ["run"])
    assert isinstance(result.exception, ZeroDivisionError)  # not swallowed, not dressed up
    result = CliRunner().invoke(_app_raising(ConfigError("bad")), ["run"], env={"DREAMGYM_DEBUG": "1"})
    assert isinstance(result.exception, ConfigError)
    result = CliRunner().invoke(app, ["--debug", "train", "--set", "loop.nope=1"])
    assert isinstance(result.exception, ConfigError) and "loop.nope" in str(result.exception)
    result = CliRunner().invoke(app, ["train", "--set", "loop.nope=1"])
    assert result.exit_code == 2 and result.exception is not None and "Traceback" not in result.output


def test_an_interrupt_exits_130_and_says_what_was_kept() -> None:
    result = CliRunner().invoke(_app_raising(KeyboardInterrupt(), "3 episodes are in out.jsonl"), ["run"])
    assert result.exit_code == 130
    assert result.output.strip() == "interrupted: 3 episodes are in out.jsonl"
    result = CliRunner().invoke(_app_raising(KeyboardInterrupt()), ["run"])
    assert (result.exit_code, result.output.strip()) == (130, "interrupted")


async def test_cancelled_thread_work_stops_at_its_next_check() -> None:
    started, ended = threading.Event(), threading.Event()
    outcome: list[str] = []

    def work(stop: threading.Event) -> None:
        started.set()
        try:
            while True:  # a training loop: one step, then the check
                if stop.wait(0.01):
                    raise Stopped
        except Stopped:
            outcome.append("stopped")
            raise
        finally:
            ended.set()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_stoppable, work)
            await anyio.to_thread.run_sync(started.wait)
            scope.cancel()
    assert await anyio.to_thread.run_sync(ended.wait, 30)  # a hang guard, not a timing
    assert outcome == ["stopped"]


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
def test_print_config_writes_what_config_reads(tmp_path: Path, fmt: str) -> None:
    args = ["train", "--iterations", "3", "--set", "loop.group_size=8", "--run-dir", "2024"]
    result = CliRunner().invoke(app, [*args, "--print-config", "--format", fmt])
    assert result.exit_code == 0, result.output
    file = tmp_path / f"train.{fmt}"
    file.write_text(result.stdout)
    given = {"loop.budget.iterations": 3, "loop.group_size": "8", "run_dir": "2024"}
    expected = load_train_config(None, given)
    assert load_train_config(file, {}) == expected
    assert expected.run_dir == "2024"  # a string where the schema says string, not the number 2024
    if fmt == "toml":
        assert tomllib.loads(result.stdout)["loop"]["budget"]["iterations"] == 3
    if fmt == "yaml":
        assert yaml.safe_load(result.stdout)["loop"]["group_size"] == 8


def test_serve_prints_its_settings_as_toml_without_secrets(tmp_path: Path) -> None:
    from dreamgym_sdk.cli.serve import app as serve_app
    from dreamgym_sdk.serve.config import load_config

    args = ["--model", "openai/gpt-4o-mini", "--api-key", "sk-secret-123456", "--max-steps", "9"]
    result = CliRunner().invoke(serve_app, [*args, "--token", "tok-secret", "--print-config"])
    assert result.exit_code == 0, result.output
    assert "secret" not in result.output
    file = tmp_path / "serve.toml"
    file.write_text(result.stdout)
    loaded = load_config(file)
    assert isinstance(loaded, ServeConfig) and (loaded.model, loaded.max_steps) == ("openai/gpt-4o-mini", 9)
    assert not loaded.tokens and loaded.api_key is None


def test_log_level_applies_to_any_command() -> None:
    logger = logging.getLogger("dreamgym_sdk")
    before = logger.level
    try:
        result = CliRunner().invoke(app, ["--log-level", "debug", "train", "--print-config"])
        assert result.exit_code == 0 and logger.level == logging.DEBUG
        result = CliRunner().invoke(app, ["--log-level", "loud", "train", "--print-config"])
        assert result.exit_code == 2 and "loud" in result.output
    finally:
        logger.setLevel(before)


def test_ctrl_c_is_not_lost_in_a_shielded_write() -> None:
    """asyncio's native cancel of the main task broke into shielded code (and a library that absorbed it
    let the command run on); the CLI's runner lets the write finish and stops at the next await."""
    steps: list[str] = []

    async def work() -> None:
        await anyio.sleep(0.1)
        with anyio.CancelScope(shield=True):  # a write that must not be cut in half
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep(0.2)
            steps.append("write finished")
        await anyio.sleep(30)
        steps.append("went on")

    with pytest.raises(KeyboardInterrupt):
        run_async(work)
    assert steps == ["write finished"]
