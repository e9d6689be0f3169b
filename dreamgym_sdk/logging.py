"""Library logging: structlog on top of stdlib logging, silent unless the application opts in.

The SDK logs through stdlib loggers under ``dreamgym_sdk`` (a ``NullHandler`` is attached, so nothing is
printed by default) and never touches structlog's global configuration. Applications call
:func:`configure_logging` or attach their own handlers to the ``dreamgym_sdk`` logger.

Two protections run on every log record, whatever the configuration:

- secrets (any key that looks like an API key, token, password or authorization header, and any value
  that looks like a bearer token or ``sk-...`` key) are replaced by ``"***"``;
- model payloads (``prompt``, ``completion``, ``messages``, ...) are replaced by their length unless
  payload logging was enabled with ``configure_logging(log_payloads=True)``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, cast

import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

_ROOT = "dreamgym_sdk"
logging.getLogger(_ROOT).addHandler(logging.NullHandler())

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|token|authorization|credential)", re.I)
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)")
_PAYLOAD_KEYS = frozenset({"prompt", "completion", "messages", "response_text", "raw_text", "content"})
_state = {"log_payloads": False}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE.sub("***", value)
    if isinstance(value, dict):
        items = cast(dict[Any, Any], value).items()
        return {k: "***" if _SECRET_KEY.search(str(k)) else _scrub(v) for k, v in items}
    if isinstance(value, list | tuple):
        seq = cast(list[Any] | tuple[Any, ...], value)
        return type(seq)(_scrub(v) for v in seq)
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor that removes secrets and, unless enabled, model payloads."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key):
            event_dict[key] = "***"
        elif key in _PAYLOAD_KEYS and not _state["log_payloads"] and not str(value).startswith("<redacted "):
            event_dict[key] = f"<redacted {len(str(value))} chars>"
        else:
            event_dict[key] = _scrub(value)
    return event_dict


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that writes through the stdlib logger ``name`` (under ``dreamgym_sdk``)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            redact,
            structlog.stdlib.render_to_log_kwargs,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is at emit time, so redirected or captured stderr keeps working."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        pass


def configure_logging(level: int | str = "INFO", *, json: bool = False, log_payloads: bool = False) -> None:
    """Print the SDK's logs to stderr, for applications and scripts.

    Args:
        level: minimum level, e.g. ``"DEBUG"``.
        json: one JSON object per line instead of human-readable key=value lines.
        log_payloads: include prompts and completions in logs (off by default; API keys are always
            redacted).
    """
    _state["log_payloads"] = log_payloads
    logger = logging.getLogger(_ROOT)
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_dreamgym", False):
            logger.removeHandler(handler)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.add_log_level,
                redact,
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        )
    )
    handler._dreamgym = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
