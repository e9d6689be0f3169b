"""Option handling shared by the commands whose flags map to one config object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typer

from dreamgym_sdk.config_files import parse_override

__all__ = ["overrides"]


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
