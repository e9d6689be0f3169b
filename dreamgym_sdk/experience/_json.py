r"""A lenient JSON reader for model output: finds the first JSON object in text and repairs it when the
repair is unambiguous.

Accepted deviations from JSON (each recorded by name in ``repairs``):

- ``surrounding_text``: prose or code fences around the object;
- ``single_quotes``: ``'strings'`` and ``'keys'``;
- ``unquoted_keys``: ``{reward: 0}``;
- ``trailing_comma``: ``[1, 2,]`` and ``{"a": 1,}``;
- ``python_literals``: ``True`` / ``False`` / ``None``;
- ``comments``: ``// ...`` and ``/* ... */`` outside strings;
- ``control_characters``: raw newlines or tabs inside strings;
- ``invalid_escape``: an unknown escape such as ``\d`` is kept literally; ``\'`` becomes ``'``;
- ``number_format``: ``+1``, ``.5``, ``1.``;
- ``closed_truncated``: the text ends between two members of an object (or items of an array), so the
  missing closing brackets are added. Text that ends inside a string, a number, a key or after a colon is
  never completed.

Everything else (missing commas, unbalanced quotes, duplicate keys with different values, nesting deeper
than :data:`MAX_DEPTH`, ``NaN``) is an error: the caller re-asks the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "ExtractedJson", "JsonSyntaxError", "extract_json_object"]

MAX_DEPTH = 64
"""Deepest nesting accepted; deeper input is junk, not an answer."""
MAX_CANDIDATES = 32
"""How many ``{`` positions are tried as the start of the object."""


def _no_conflicting_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result and result[key] != value:
            raise ValueError(f"duplicate key {key!r} with different values")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_no_conflicting_duplicates)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_WORDS: dict[str, tuple[Any, bool]] = {
    "true": (True, False),
    "false": (False, False),
    "null": (None, False),
    "True": (True, True),
    "False": (False, True),
    "None": (None, True),
}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "'": "'"}
_WHITESPACE = " \t\r\n\ufeff"
_STRING_STOPS = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_CONTROL = re.compile(r"[\x00-\x1f]")


class JsonSyntaxError(ValueError):
    """Raised when no JSON object can be read from the text, even with the allowed repairs."""


class _Incomplete(JsonSyntaxError):
    """The text ends inside a value, so completing it would mean guessing."""


@dataclass(frozen=True, slots=True)
class ExtractedJson:
    """An object read from model output, with the repairs that were needed."""

    value: dict[str, Any]
    repairs: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        """Whether closing brackets had to be added because the text ended early."""
        return "closed_truncated" in self.repairs


class _Reader:
    """Recursive-descent reader over ``text`` from ``pos``; collects repair names."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self.repairs: set[str] = set()

    def _skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            char = text[self.pos]
            if char in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
                self.repairs.add("comments")
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise _Incomplete("unterminated comment")
                self.pos = end + 2
                self.repairs.add("comments")
            else:
                return

    def _at_end(self) -> bool:
        self._skip()
        return self.pos >= len(self.text)

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise JsonSyntaxError(f"nesting deeper than {MAX_DEPTH}")
        if self._at_end():
            raise _Incomplete("text ends where a value was expected")
        char = self.text[self.pos]
        if char == "{":
            return self.object(depth)
        if char == "[":
            return self.array(depth)
        if char in "\"'":
            return self.string()
        if char in "+-.0123456789":
            return self.number()
        match = _WORD.match(self.text, self.pos)
        if match is None:
            raise JsonSyntaxError(f"unexpected character {char!r} at {self.pos}")
        word = match.group()
        if word not in _WORDS:
            raise JsonSyntaxError(f"unexpected word {word!r} at {self.pos}")
        self.pos = match.end()
        value, python = _WORDS[word]
        if python:
            self.repairs.add("python_literals")
        return value

    def object(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        state = "start"  # start | after_value | after_comma
        while True:
            if self._at_end():
                self.repairs.add("closed_truncated")
                return result
            char = self.text[self.pos]
            if char == "}":
                if state == "after_comma":
                    self.repairs.add("trailing_comma")
                self.pos += 1
                return result
            if state == "after_value":
                if char != ",":
                    raise JsonSyntaxError(f"expected ',' or '}}' at {self.pos}, got {char!r}")
                self.pos += 1
                state = "after_comma"
                continue
            key = self.key()
            if self._at_end():
                raise _Incomplete("text ends after a key")
            if self.text[self.pos] != ":":
                raise JsonSyntaxError(f"expected ':' after key {key!r} at {self.pos}")
            self.pos += 1
            item = self.value(depth + 1)
            if key in result and result[key] != item:
                raise JsonSyntaxError(f"duplicate key {key!r} with different values")
            result[key] = item
            state = "after_value"

    def array(self, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        state = "start"
        while True:
            if self._at_end():
                self.repairs.add("closed_truncated")
                return result
            char = self.text[self.pos]
            if char == "]":
                if state == "after_comma":
                    self.repairs.add("trailing_comma")
                self.pos += 1
                return result
            if state == "after_value":
                if char != ",":
                    raise JsonSyntaxError(f"expected ',' or ']' at {self.pos}, got {char!r}")
                self.pos += 1
                state = "after_comma"
                continue
            result.append(self.value(depth + 1))
            state = "after_value"

    def key(self) -> str:
        char = self.text[self.pos]
        if char in "\"'":
            return self.string()
        match = _WORD.match(self.text, self.pos)
        if match is None:
            raise JsonSyntaxError(f"expected a key at {self.pos}, got {char!r}")
        self.pos = match.end()
        self.repairs.add("unquoted_keys")
        return match.group()

    def string(self) -> str:
        text = self.text
        quote = text[self.pos]
        if quote == "'":
            self.repairs.add("single_quotes")
        stops = _STRING_STOPS[quote]
        self.pos += 1
        parts: list[str] = []
        while True:
            match = stops.search(text, self.pos)
            if match is None:
                raise _Incomplete("text ends inside a string")
            chunk = text[self.pos : match.start()]
            if _CONTROL.search(chunk):
                self.repairs.add("control_characters")
            parts.append(chunk)
            self.pos = match.start()
            if text[self.pos] == quote:
                self.pos += 1
                return "".join(parts)
            parts.append(self._escape())

    def _escape(self) -> str:
        text = self.text
        if self.pos + 1 >= len(text):
            raise _Incomplete("text ends inside an escape")
        code = text[self.pos + 1]
        if code == "u":
            digits = text[self.pos + 2 : self.pos + 6]
            if len(digits) < 4 and self.pos + 6 > len(text):
                raise _Incomplete("text ends inside a unicode escape")
            if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                self.pos += 6
                return chr(int(digits, 16))
            self.repairs.add("invalid_escape")
            self.pos += 2
            return "\\u"
        self.pos += 2
        if code in _ESCAPES:
            if code == "'":
                self.repairs.add("invalid_escape")
            return _ESCAPES[code]
        self.repairs.add("invalid_escape")
        return "\\" + code

    def number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if match is None:
            raise JsonSyntaxError(f"malformed number at {self.pos}")
        end = match.end()
        if end >= len(self.text):
            raise _Incomplete("text ends inside a number")
        following = self.text[end]
        if following.isalnum() or following in "._":
            raise JsonSyntaxError(f"malformed number at {self.pos}")
        token = match.group()
        self.pos = end
        if token[0] == "+" or token.lstrip("-").startswith(".") or token.endswith("."):
            self.repairs.add("number_format")
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        return float(token)


def _read_lenient(text: str, pos: int) -> tuple[dict[str, Any], set[str], int]:
    reader = _Reader(text, pos)
    value = reader.object(0)
    return value, reader.repairs, reader.pos


def _fix_unicode(value: Any) -> tuple[Any, bool]:
    r"""Replace lone surrogates (from ``\ud800``-style escapes) so the value encodes as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), True
        return value, False
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            new_key, key_changed = _fix_unicode(key)
            new_item, item_changed = _fix_unicode(item)
            out[new_key] = new_item
            changed = changed or key_changed or item_changed
        return out, changed
    if isinstance(value, list):
        pairs = [_fix_unicode(item) for item in value]  # pyright: ignore[reportUnknownVariableType]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


def extract_json_object(text: str, *, prefer_keys: Iterable[str] = ()) -> ExtractedJson:
    """Read the first JSON object in ``text`` (see the module docstring for the repairs allowed).

    Objects are tried in order of their opening brace, skipping braces inside an object already read. The
    first object having any of ``prefer_keys`` wins; when none has one, the first object read is returned.

    Args:
        text: raw model output.
        prefer_keys: keys that identify the object wanted (e.g. the contract's field names).

    Raises:
        JsonSyntaxError: no object could be read.
    """
    if not text.strip():
        raise JsonSyntaxError("the output is empty")
    wanted = frozenset(prefer_keys)
    first: ExtractedJson | None = None
    first_error: JsonSyntaxError | None = None
    covered_until = -1
    tried = 0
    pos = text.find("{")
    while pos >= 0 and tried < MAX_CANDIDATES:
        if pos >= covered_until:
            tried += 1
            found = _read_at(text, pos)
            if isinstance(found, JsonSyntaxError):
                first_error = first_error or found
            else:
                extracted, end = found
                if not wanted or wanted & extracted.value.keys():
                    return extracted
                first = first or extracted
                covered_until = end
        pos = text.find("{", pos + 1)
    if first is not None:
        return first
    if first_error is not None:
        raise first_error
    raise JsonSyntaxError("no JSON object found in the output")


def _read_at(text: str, pos: int) -> tuple[ExtractedJson, int] | JsonSyntaxError:
    """The object starting at ``pos`` and where it ends, or why it cannot be read."""
    repairs: set[str]
    try:
        value, end = _DECODER.raw_decode(text, pos)
        repairs = set()
    except (ValueError, RecursionError):
        try:
            value, repairs, end = _read_lenient(text, pos)
        except JsonSyntaxError as exc:
            return exc
    if not isinstance(value, dict):  # pragma: no cover - raw_decode at "{" always yields a dict
        return JsonSyntaxError("not an object")
    value, unicode_fixed = _fix_unicode(value)
    if unicode_fixed:
        repairs.add("invalid_unicode")
    if text[:pos].strip() or text[end:].strip():
        repairs.add("surrounding_text")
    return ExtractedJson(value, tuple(sorted(repairs))), end
