r"""The text action language of MiniWoB++ episodes, and its parser.

```text
click [12]                 click element 12 (the number in brackets in the state)
type [5] "hello world"     focus element 5 and type the text
type "hello"               type into the focused element
press <Enter>              press a key (also: press Enter, press "<Tab>", press C-a)
noop                       do nothing this step (also: wait)
```

Quotes around text are JSON string quotes (``\"`` and ``\n`` work); single quotes work for text without
quotes inside. Keywords are case-insensitive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ACTION_HELP", "ActionKind", "InvalidActionError", "ParsedAction", "parse_action"]

ACTION_HELP = (
    'Actions: click [id] | type [id] "text" | type "text" | press <Key> | noop. '
    "Ids are the numbers in brackets in the state."
)
"""A one-paragraph description of the action language, for prompts."""


class ActionKind(StrEnum):
    """What a parsed action does."""

    CLICK = "click"
    TYPE_INTO = "type_into"
    TYPE = "type"
    PRESS = "press"
    NOOP = "noop"


class InvalidActionError(ValueError):
    """Raised when a text action does not follow the action language (:data:`ACTION_HELP`)."""


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """A text action, parsed."""

    kind: ActionKind
    ref: int | None = None
    """The element id, for ``click`` and ``type [id]``."""
    text: str | None = None
    """The text to type."""
    key: str | None = None
    """The key to press, in MiniWoB's notation (``<Enter>``, ``a``, ``C-a``)."""


_REF = r"\[\s*(\d+)\s*\]"
_TEXT = r"(\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_PATTERNS: tuple[tuple[ActionKind, re.Pattern[str]], ...] = (
    (ActionKind.CLICK, re.compile(rf"click\s*{_REF}", re.I)),
    (ActionKind.TYPE_INTO, re.compile(rf"type\s*{_REF}\s*{_TEXT}", re.I | re.S)),
    (ActionKind.TYPE, re.compile(rf"type\s*{_TEXT}", re.I | re.S)),
    (ActionKind.PRESS, re.compile(r"press\s+(<[^<>\s]+>|\"[^\"\s]+\"|'[^'\s]+'|\S+)", re.I)),
    (ActionKind.NOOP, re.compile(r"(?:noop|no-op|wait)\.?", re.I)),
)


def _unquote(quoted: str) -> str:
    if quoted.startswith("'"):
        return quoted[1:-1]
    try:
        value: str = json.loads(quoted)
    except json.JSONDecodeError as exc:
        raise InvalidActionError(f"bad string literal {quoted}: {exc.msg}") from exc
    return value


def _key(raw: str) -> str:
    key = raw.strip().strip("\"'")
    if len(key) > 1 and not key.startswith("<") and "-" not in key:
        key = f"<{key[0].upper()}{key[1:]}>"
    return key


def parse_action(action: str) -> ParsedAction:
    """Parse one text action (surrounding whitespace and a trailing period are ignored).

    Raises:
        InvalidActionError: the text is not an action of the language.
    """
    text = action.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if kind is ActionKind.CLICK:
            return ParsedAction(kind, ref=int(match.group(1)))
        if kind is ActionKind.TYPE_INTO:
            return ParsedAction(kind, ref=int(match.group(1)), text=_unquote(match.group(2)))
        if kind is ActionKind.TYPE:
            return ParsedAction(kind, text=_unquote(match.group(1)))
        if kind is ActionKind.PRESS:
            return ParsedAction(kind, key=_key(match.group(1)))
        return ParsedAction(kind)
    raise InvalidActionError(f"not an action: {text[:80]!r}. {ACTION_HELP}")
