"""Configuration files and command-line overrides, validated into the SDK's pydantic configs: one reader
and one error style for every command (``train``, ``serve``, ``replay``, ``distill``, ``demo``).

A file is TOML (``.toml``), YAML (``.yaml``/``.yml``, with PyYAML) or JSON (``.json``); a command whose
settings live in a table of their own (``[serve]``, ``[replay]``) reads that table when the file has one,
else the whole file. Overrides (from flags) are applied on top with dotted keys (``loop.group_size``);
``None`` means "not given". Every problem is a :class:`~dreamgym_sdk.ConfigError` that names the file and
the key, suggests the closest key for a misspelt one, and never repeats a value (which may be a secret).
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError

__all__ = [
    "ConfigFormat",
    "dump_config",
    "load_config",
    "parse_override",
    "read_config_file",
    "validate_config",
]

M = TypeVar("M", bound=BaseModel)

ConfigFormat = Literal["toml", "yaml", "json"]
"""A config file's format (the commands' ``--print-config --format``)."""


def read_config_file(path: str | Path, *, section: str | None = None) -> dict[str, Any]:
    """The settings in a TOML, YAML or JSON file: its ``[section]`` table when it has one, else all of it.

    Raises:
        ConfigError: the file is missing, unreadable, not parseable, or not a table.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            raw: Any = require("yaml", extra="serve", feature="YAML config files").safe_load(text) or {}
        elif suffix == ".json":
            raw = json.loads(text)
        else:
            raw = tomllib.loads(text)
    except ConfigError:
        raise
    except Exception as exc:  # the parsers' own errors: say where, never quote the text
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
        where = f" at line {line}" if line is not None else ""
        raise ConfigError(f"cannot parse config file {str(file)!r}{where} ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(file)!r} must hold a table of settings")
    table = cast(dict[str, Any], raw)
    if section is None or section not in table:
        return dict(table)
    chosen = table[section]
    if not isinstance(chosen, dict):
        raise ConfigError(f"config file {str(file)!r}: [{section}] must be a table")
    return dict(cast(dict[str, Any], chosen))


def dump_config(config: BaseModel, format: ConfigFormat = "toml") -> str:
    """``config`` as a file that :func:`load_config` reads back into an equal config.

    Secrets (``SecretStr`` fields) are left out: they belong in the environment or a file of their own.
    TOML has no null, so a setting that is ``None`` is left out there too; its default then applies, which
    is ``None`` for every such field of the SDK's configs (YAML and JSON write ``null``).
    """
    data = config.model_dump(mode="json", exclude=_secrets(config) or None)
    if format == "json":
        return json.dumps(data, indent=2) + "\n"
    if format == "yaml":
        yaml = require("yaml", extra="serve", feature="YAML config files")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    import tomli_w

    return tomli_w.dumps(_without_none(data))


def _secrets(model: BaseModel) -> dict[str, Any]:
    """The ``exclude`` argument of ``model_dump`` that leaves out every secret, however deep."""
    excluded: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        items: Sequence[Any] = (
            list(cast(Iterable[Any], value)) if isinstance(value, list | tuple | set | frozenset) else [value]
        )
        if any(isinstance(item, SecretStr | SecretBytes) for item in items):
            excluded[name] = True
        elif isinstance(value, BaseModel) and (inner := _secrets(value)):
            excluded[name] = inner
    return excluded


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in cast(dict[str, Any], value).items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in cast(list[Any], value)]
    return value


def parse_override(text: str) -> Any:
    """A ``--set KEY=VALUE`` value: JSON for lists, tables and ``null``, else the text as it is (pydantic
    turns ``"3"`` into 3 where a number is expected, and keeps ``"2024"`` a string where a string is)."""
    stripped = text.strip()
    if stripped == "null":
        return None
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def validate_config(model: type[M], data: Mapping[str, Any], *, what: str, source: str = "") -> M:
    """Validate ``data`` into ``model``.

    Raises:
        ConfigError: ``invalid <what>[ in <source>]: <key>: <problem>; ...``, with a suggestion for a
            misspelt key and no input values.
    """
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        where = f" in {source}" if source else ""
        problems = "; ".join(_problem(model, error) for error in exc.errors(include_input=False)[:10])
        raise ConfigError(f"invalid {what}{where}: {problems}") from None


def load_config(
    model: type[M],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    section: str | None = None,
    what: str = "configuration",
) -> M:
    """``model`` from a config file (optional) with ``overrides`` (dotted keys; ``None`` values skipped).

    A table (``[game]``, or ``game.recipe=2``) changes the field's default rather than replacing it: with a
    default of ``CookingSpec(open=True)``, ``game.recipe=2`` means two ingredients in that world.

    Raises:
        ConfigError: see :func:`read_config_file` and :func:`validate_config`.
    """
    tree = read_config_file(path, section=section) if path is not None else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(tree, key, value)
    _onto_defaults(model, tree)
    return validate_config(model, tree, what=what, source=str(path) if path is not None else "")


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child: Any = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {key!r} is not a table of settings")
        node = cast(dict[str, Any], child)
    node[leaf] = value


def _onto_defaults(model: type[BaseModel], tree: dict[str, Any]) -> None:
    """Fill the tables of ``tree`` with what their fields' model defaults set explicitly (recursively)."""
    for key, value in tree.items():
        field = model.model_fields.get(key)
        if field is None or not isinstance(value, dict):
            continue
        table = cast(dict[str, Any], value)
        if isinstance(field.default, BaseModel):
            table |= {k: v for k, v in field.default.model_dump(exclude_unset=True).items() if k not in table}
        if (nested := _model_in(field.annotation)) is not None:
            _onto_defaults(nested, table)


def _problem(model: type[BaseModel], error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "config"
    if error["type"] != "extra_forbidden":
        return f"{key}: {str(error['msg']).removeprefix('Value error, ')}"
    close = difflib.get_close_matches(loc[-1], _fields_at(model, loc[:-1]), n=1, cutoff=0.6)
    if close:
        return f"{key}: unknown key (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)"
    # a setting put in the wrong table (``iterations`` for ``loop.iterations``): look everywhere
    paths = {p.rsplit(".", 1)[-1]: p for p in reversed(_setting_paths(model))}
    close = difflib.get_close_matches(loc[-1], list(paths), n=1, cutoff=0.75)
    return f"{key}: unknown key" + (f" (did you mean {paths[close[0]]!r}?)" if close else "")


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the (nested) model at ``path``; empty where the path leaves the models."""
    current: type[BaseModel] | None = model
    for part in path:
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(current.model_fields) if current is not None else []


def _setting_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The dotted path of every setting of ``model``, tables included, shallowest first."""
    paths = [prefix + name for name in model.model_fields]
    for name, field in model.model_fields.items():
        if (nested := _model_in(field.annotation)) is not None:
            paths += _setting_paths(nested, f"{prefix}{name}.")
    return paths


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation names (``Section``, ``Section | None``), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
