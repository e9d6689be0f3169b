"""What every command shares: the command groups, the options that map onto one config object, and the
error boundary (an SDK error is one line on stderr, an interrupt says what was kept)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import anyio
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from dreamgym_sdk.config_files import ConfigFormat, dump_config, parse_override
from dreamgym_sdk.errors import ConfigError, DreamGymError, MissingExtraError

if TYPE_CHECKING:
    from typer._click.core import Context  # typer's own click, which its groups are made of

__all__ = [
    "DEBUG_ENV",
    "FileFormat",
    "FormatOption",
    "PrintConfigOption",
    "RootGroup",
    "command_group",
    "configure_command_logging",
    "fail",
    "interrupt_says",
    "overrides",
    "print_config",
    "run_async",
    "sdk_error",
    "set_cli_options",
]

DEBUG_ENV = "DREAMGYM_DEBUG"
"""Set to 1 (like ``--debug``) to see the traceback of an error the CLI would print in one line."""
_DEBUG, _LOG_LEVEL = "dreamgym.debug", "dreamgym.log_level"
INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""

_err = Console(stderr=True)
T = TypeVar("T")


def overrides(named: Mapping[str, Any], settings: Sequence[str] | None) -> dict[str, Any]:
    """The config keys set on the command line: the named flags that were given, then ``--set KEY=VALUE``
    (its value read by :func:`~dreamgym_sdk.config_files.parse_override`: JSON for lists and tables).

    Raises:
        typer.BadParameter: a ``--set`` item without ``=``.
    """
    values = {key: value for key, value in named.items() if value is not None}
    for item in settings or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set needs KEY=VALUE, got {item!r}")
        values[key.strip()] = parse_override(value)
    return values


class FileFormat(StrEnum):
    """The ``--format`` of ``--print-config``."""

    TOML = "toml"
    YAML = "yaml"
    JSON = "json"


PrintConfigOption = Annotated[
    bool, typer.Option("--print-config", help="Print the settings as a file --config reads, then exit.")
]
FormatOption = Annotated[FileFormat, typer.Option("--format", help="The file format of --print-config.")]


def print_config(config: BaseModel, format: FileFormat | ConfigFormat) -> None:
    """Print ``config`` as a file ``--config`` reads back (secrets left out)."""
    typer.echo(dump_config(config, cast(ConfigFormat, str(format))), nl=False)


def command_group(
    name: str | None = None, *, help: str, no_args_is_help: bool = True, cls: type[TyperGroup] | None = None
) -> typer.Typer:
    """A ``dreamgym`` command group. Help text is shown as written: rich markup is off, so a bracket such as
    ``[config: uri]`` is printed instead of being read as a style tag and dropped."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=no_args_is_help,
        rich_markup_mode=None,
        pretty_exceptions_show_locals=False,
        cls=cls,
    )


def set_cli_options(ctx: Context, *, debug: bool, log_level: str | None) -> None:
    """Record the root options for the commands (``ctx.meta`` is shared by the whole invocation) and
    print the SDK's logs from ``log_level`` on."""
    ctx.meta[_DEBUG] = debug
    ctx.meta[_LOG_LEVEL] = log_level
    if log_level is not None:
        from dreamgym_sdk.logging import configure_logging

        configure_logging(log_level.upper())


def configure_command_logging(ctx: Context, default: str) -> None:
    """Print the SDK's logs from ``default`` on, unless ``--log-level`` chose the level already."""
    if ctx.meta.get(_LOG_LEVEL) is None:
        from dreamgym_sdk.logging import configure_logging

        configure_logging(default)


def debugging(ctx: Context | None = None) -> bool:
    """Whether errors keep their traceback (``--debug`` or ``DREAMGYM_DEBUG=1``)."""
    if ctx is not None and ctx.meta.get(_DEBUG):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sdk_error(exc: BaseException) -> DreamGymError | None:
    """The SDK error ``exc`` is, or the first of an exception group made only of SDK errors."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [sdk_error(e) for e in cast(BaseExceptionGroup[BaseException], exc).exceptions]
        return leaves[0] if leaves and all(leaves) else None
    return exc if isinstance(exc, DreamGymError) else None


def fail(exc: Exception, code: int | None = None) -> NoReturn:
    """One line on stderr, no traceback (a config error as it is, others named by their type), then exit
    with ``code`` (default: 2 for a config error or a missing extra, as for usage errors; else 1)."""
    usage = isinstance(exc, ConfigError | MissingExtraError)
    what = "" if usage else f"{type(exc).__name__}: "
    message = " ".join(str(exc).split())
    _err.print(Text.assemble(("error: ", "red"), what + message), soft_wrap=True)
    raise typer.Exit(code if code is not None else 2 if usage else 1) from None


def run_async(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``anyio.run(fn, *args)``, where Ctrl-C cancels the work through anyio and then raises
    ``KeyboardInterrupt``.

    asyncio's own handler cancels the main task once, natively: that broke into shielded sections (a
    replay write that must not be cut in half), and where a library absorbed it (a running import) the
    command went on to its end as if nothing had been pressed. An anyio cancel respects shields and stays
    in force: the shielded write finishes, the next await stops. A second Ctrl-C interrupts at once.
    """
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return anyio.run(fn, *args)

    async def main() -> T:
        work = anyio.CancelScope()
        interrupted = False
        outcome: list[T] = []
        failure: list[Exception] = []

        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                async for _ in signals:
                    interrupted = True
                    work.cancel()
                    return

        async with anyio.create_task_group() as watching:
            watching.start_soon(watch)
            try:
                with work:
                    outcome.append(await fn(*args))
            except Exception as exc:  # raised as it is below, not inside the watcher's exception group
                failure.append(exc)
            watching.cancel_scope.cancel()
        if failure:
            raise failure[0]
        if interrupted or not outcome:
            raise KeyboardInterrupt
        return outcome[0]

    return anyio.run(main)


@contextlib.contextmanager
def interrupt_says(note: str | Callable[[], str]) -> Generator[None]:
    """On Ctrl-C inside the block, print ``note`` (what was kept, how to go on) and exit with code 130."""
    try:
        yield
    except KeyboardInterrupt:
        _interrupted(note() if callable(note) else note)


def _interrupted(note: str) -> NoReturn:
    _err.print(Text.assemble(("\ninterrupted", "yellow"), f": {note}" if note else ""), soft_wrap=True)
    raise typer.Exit(INTERRUPTED) from None


class RootGroup(TyperGroup):
    """The ``dreamgym`` group: every command runs inside its error boundary. An SDK error (or a group of
    them, from a task group) becomes one line and exit code 1 (2 for a usage error), unless ``--debug``;
    Ctrl-C ends with code 130 and a line saying so; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted("")
        except Exception as exc:
            error = sdk_error(exc)
            if error is None or debugging(ctx):
                raise
            fail(error)
