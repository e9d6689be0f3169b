"""Option handling shared by the commands whose flags map to one config object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typer

from dreamgym_sdk.config_files import parse_override

__all__ = ["command_group", "overrides"]


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


def command_group(name: str | None = None, *, help: str, no_args_is_help: bool = True) -> typer.Typer:
    """A ``dreamgym`` command group. Help text is shown as written: rich markup is off, so a bracket such as
    ``[config: uri]`` is printed instead of being read as a style tag and dropped."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=no_args_is_help,
        rich_markup_mode=None,
        pretty_exceptions_show_locals=False,
    )
