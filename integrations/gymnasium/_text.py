"""Text spaces for free-form observations and actions, and fitting a string into one."""

from __future__ import annotations

from gymnasium import spaces

__all__ = ["TEXT_CHARSET", "fit_text", "text_space"]

TEXT_CHARSET = "\n\t" + "".join(c for c in map(chr, range(0x10000)) if c.isprintable())
"""Every printable character of Unicode's basic multilingual plane, plus newline and tab."""

REPLACEMENT = "\ufffd"
"""Stands in for characters outside the charset (control characters, emoji beyond the BMP)."""

ELLIPSIS = "…"


def text_space(max_length: int, *, min_length: int = 0, charset: str = TEXT_CHARSET) -> spaces.Text:
    """A :class:`gymnasium.spaces.Text` of up to ``max_length`` characters from ``charset``."""
    return spaces.Text(max_length, min_length=min_length, charset=charset)


def fit_text(text: str, space: spaces.Text) -> str:
    """``text`` made a member of ``space``: unknown characters replaced, too long cut with ``…``.

    The replacement character and the ellipsis must be in the space's charset (they are in
    :data:`TEXT_CHARSET`); a string already in the space is returned unchanged.
    """
    allowed = space.character_set
    if not all(c in allowed for c in text):
        text = "".join(c if c in allowed else REPLACEMENT for c in text)
    if len(text) > space.max_length:
        text = text[: max(space.max_length - 1, 0)] + ELLIPSIS[: space.max_length]
    if len(text) < space.min_length:
        text = text.ljust(space.min_length)
    return text
