"""Clean-up of the Z-machine's output: banner, prompt and status line removed."""

from __future__ import annotations

import re

_BANNER_LINE = re.compile(r"^(?=.*\S)[\s_|\\$/<>()]+$")  # the ASCII-art TEXTWORLD title
_PROMPT_LINE = re.compile(r"^\s*>")  # "> ... -= Kitchen =-0/2": the prompt and the status line
_RESTART_LINE = re.compile(r"Would you like to RESTART, RESTORE a saved game, QUIT or UNDO", re.I)
_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def clean_feedback(text: str | None) -> str:
    """The game's text without the title banner, the ``>`` prompt, the status line and the
    end-of-game restart question; paragraphs kept, surrounding blank lines removed."""
    if not text:
        return ""
    lines = [
        line.rstrip()
        for line in text.splitlines()
        if not (_BANNER_LINE.match(line) or _PROMPT_LINE.match(line) or _RESTART_LINE.search(line))
    ]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return _SPACES.sub(" ", text).strip()
