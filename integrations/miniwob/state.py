""":class:`MiniWoBStateMapper`: MiniWoB++'s DOM elements → a compact, AXTree-style text state.

MiniWoB returns the task area's DOM as a flat list of elements, each with a ``ref`` (its id for actions),
its ``parent``'s ref, ``tag`` (``input_text``, ``button``, ``t`` for a text node, ...), ``text``,
``value``, ``id``, ``classes`` and ``flags`` (focused, tampered, targeted, is_leaf). The state lists what
an agent can see and act on, one line each, in document order::

    Enter "Jerald" into the text field and press Submit.
    [5] textbox
    [6] button "Submit"

Interactive elements and leaves with text get ``[ref] role "label"``, with ``value="..."``,
``checked`` and ``focused`` when they apply; text nodes become plain lines, or label the control they
sit beside inside a ``<label>`` (``[6] checkbox "USa"``); containers without text of their own are left
out. Password values are never shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MiniWoBStateMapper"]

_INPUT_ROLES = {
    "checkbox": "checkbox",
    "radio": "radio",
    "submit": "button",
    "button": "button",
    "reset": "button",
    "range": "slider",
    "password": "password",
}
_ROLES = {"button": "button", "a": "link", "select": "combobox", "textarea": "textbox", "option": "option"}


def _role(tag: str) -> str | None:
    """The role of an interactive tag, or ``None`` for other tags."""
    tag = tag.lower()
    if tag.startswith("input_"):
        return _INPUT_ROLES.get(tag.removeprefix("input_"), "textbox")
    return _ROLES.get(tag)


def _squash(text: str) -> str:
    return " ".join(text.split())


class MiniWoBStateMapper:
    """Renders MiniWoB observations as text states.

    Args:
        include_utterance: start the state with the task's utterance (shown on the page itself).
        max_label_chars: labels and values longer than this are cut with ``…``.
    """

    def __init__(self, *, include_utterance: bool = True, max_label_chars: int = 80) -> None:
        self.include_utterance = include_utterance
        self.max_label_chars = max_label_chars

    def state(self, observation: Mapping[str, Any]) -> str:
        """The text state of a MiniWoB observation (its ``utterance`` and ``dom_elements``)."""
        lines = self.render(observation.get("dom_elements") or ())
        utterance = _squash(str(observation.get("utterance") or ""))
        if self.include_utterance and utterance:
            lines = [utterance, *lines]
        return "\n".join(lines)

    def render(self, elements: Sequence[Mapping[str, Any]]) -> list[str]:
        """One line per visible element worth showing, in document order."""
        children: dict[int, list[Mapping[str, Any]]] = {}
        for element in elements:
            children.setdefault(int(element["parent"]), []).append(element)
        labels: dict[int, str] = {}
        used: set[int] = set()
        for element in elements:  # a control inside a <label> is named by the label's text nodes
            if str(element["tag"]).lower() != "label":
                continue
            kids = children.get(int(element["ref"]), [])
            controls = [k for k in kids if _role(str(k["tag"])) is not None and not _squash(str(k["text"]))]
            texts = [k for k in kids if str(k["tag"]) == "t"]
            if len(controls) == 1 and texts:
                labels[int(controls[0]["ref"])] = " ".join(_squash(str(t["text"])) for t in texts)
                used.update(int(t["ref"]) for t in texts)
        lines: list[str] = []
        for element in elements:
            line = self._line(element, labels, used)
            if line:
                lines.append(line)
        return lines

    def _line(self, element: Mapping[str, Any], labels: Mapping[int, str], used: set[int]) -> str | None:
        ref, tag = int(element["ref"]), str(element["tag"])
        text = _squash(str(element.get("text") or ""))
        if tag == "t":
            return None if ref in used or not text else self._clip(text)
        role = _role(tag)
        if role is None:
            if not text:
                return None
            role = tag.lower()
        parts = [f"[{ref}] {role}"]
        label = text or labels.get(ref, "")
        if label:
            parts.append(self._quote(label))
        value = _squash(str(element.get("value") or ""))
        if value and role in ("textbox", "combobox", "slider"):
            parts.append(f"value={self._quote(value)}")
        elif role in ("checkbox", "radio") and value.lower() == "true":  # MiniWoB's value is `checked`
            parts.append("checked")
        flags = element.get("flags")
        if flags is not None and len(flags) > 0 and bool(flags[0]):
            parts.append("focused")
        return " ".join(parts)

    def _clip(self, text: str) -> str:
        return text if len(text) <= self.max_label_chars else text[: self.max_label_chars - 1] + "…"

    def _quote(self, text: str) -> str:
        return json.dumps(self._clip(text), ensure_ascii=False)
