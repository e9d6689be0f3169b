"""State mappers: raw observations (HTML, accessibility trees, ...) → compact abstract text states.

DreamGym's states are compact listings of what matters, such as::

    Shoes for everyone
    [12] button "Buy now"
    [13] textbox "Search" value="shoes"
    [14] link "Next page"

The same mapper must be used when collecting real transitions, in the synthetic environment and when the
trained agent meets the real environment, so that all three see the same state format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Protocol, runtime_checkable

__all__ = ["HtmlStateMapper", "IdentityMapper", "StateMapper"]


@runtime_checkable
class StateMapper(Protocol):
    """Turns a raw observation into the abstract text state the policy and experience model see."""

    def map(self, raw_observation: str) -> str:
        """The abstract state of ``raw_observation`` (pure and deterministic)."""
        ...


class IdentityMapper:
    """The default mapper: the observation already is the state."""

    def map(self, raw_observation: str) -> str:
        """``raw_observation`` unchanged."""
        return raw_observation


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SKIPPED = _words("script style noscript template head svg iframe object canvas ")
_VOID = _words("area base br col embed hr img input link meta param source track wbr ")
_BLOCK = _words(
    "address article aside blockquote body br caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html legend li main nav "
    "ol p pre section summary table tbody tfoot thead tr ul "
)
_CELLS = _words("td th ")
_SELF_CLOSING_SIBLINGS = {
    "li": {"li"},
    "option": {"option"},
    "p": {"p"},
    "tr": {"tr"},
    "td": _CELLS,
    "th": _CELLS,
}
_ARIA_ROLES = _words(
    "button link checkbox radio tab menuitem menuitemcheckbox menuitemradio option switch "
    "textbox searchbox combobox slider spinbutton treeitem gridcell "
)
_INPUT_ROLES = {
    "checkbox": "checkbox",
    "radio": "radio",
    "submit": "button",
    "button": "button",
    "reset": "button",
    "image": "button",
    "file": "button",
    "range": "slider",
    "color": "button",
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_SPACE = re.compile(r"\s+")


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass(eq=False)
class _Element:
    role: str
    attrs: dict[str, str]
    existing_id: str | None
    text: list[str] = field(default_factory=list[str])
    options: list[tuple[list[str], bool]] = field(default_factory=list[tuple[list[str], bool]])
    label_from: str | None = None
    """Text of a ``<label for=...>`` pointing at this element."""
    assigned_id: str = ""


@dataclass(eq=False)
class _Label:
    for_id: str
    """The ``for`` attribute; empty for a label wrapping its control."""
    text: list[str] = field(default_factory=list[str])
    target: _Element | None = None
    """The control a wrapping label contains."""
    used: bool = False


@dataclass
class _Open:
    tag: str
    element: _Element | None = None
    label: _Label | None = None
    skip: bool = False


class _Collector(HTMLParser):
    """Walks the document once, collecting text lines, elements and labels in document order."""

    def __init__(self, id_attributes: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.id_attributes = id_attributes
        self.items: list[str | _Element | _Label] = []
        self.stack: list[_Open] = []
        self.line: list[str] = []
        self.skip_depth = 0

    # -- helpers -------------------------------------------------------------------------------------
    def _flush(self) -> None:
        text = _squash("".join(self.line))
        if any(c.isalnum() for c in text):
            self.items.append(text)
        self.line = []

    def _innermost(self) -> _Open | None:
        for entry in reversed(self.stack):
            if entry.element is not None or entry.label is not None:
                return entry
        return None

    def _hidden(self, tag: str, attrs: dict[str, str]) -> bool:
        return (
            tag in _SKIPPED
            or "hidden" in attrs
            or attrs.get("aria-hidden", "").lower() == "true"
            or bool(_HIDDEN_STYLE.search(attrs.get("style", "")))
            or (tag == "input" and attrs.get("type", "").lower() == "hidden")
        )

    def _element(self, tag: str, attrs: dict[str, str]) -> _Element | None:
        role = attrs.get("role", "").lower()
        if role in _ARIA_ROLES:
            pass
        elif tag == "a" and "href" in attrs:
            role = "link"
        elif tag == "button":
            role = "button"
        elif tag == "input":
            role = _INPUT_ROLES.get(attrs.get("type", "text").lower(), "textbox")
        elif tag == "textarea":
            role = "textbox"
        elif tag == "select":
            role = "combobox"
        elif "onclick" in attrs:
            role = "clickable"
        else:
            return None
        existing = next((attrs[a] for a in self.id_attributes if attrs.get(a)), None)
        return _Element(role, attrs, existing)

    def _close(self, entry: _Open) -> None:
        if entry.skip:
            self.skip_depth -= 1
        if entry.tag in _BLOCK:
            self._flush()

    # -- HTMLParser callbacks --------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        siblings = _SELF_CLOSING_SIBLINGS.get(tag)
        if siblings and self.stack and self.stack[-1].tag in siblings:
            self._close(self.stack.pop())
        if self.skip_depth:
            if tag not in _VOID:
                self.stack.append(_Open(tag, skip=True))
                self.skip_depth += 1
            return
        if self._hidden(tag, values):
            if tag not in _VOID:
                self.stack.append(_Open(tag, skip=True))
                self.skip_depth += 1
            return
        if tag in _BLOCK:
            self._flush()
        elif tag in _CELLS and self.line and "".join(self.line).strip():
            self.line.append(" | ")
        owner = self._innermost()
        if (
            tag == "option"
            and owner is not None
            and owner.element is not None
            and owner.element.role == "combobox"
        ):
            owner.element.options.append(([], "selected" in values))
            self.stack.append(_Open(tag))
            return
        if tag == "img":
            alt = _squash(values.get("alt", ""))
            if alt and owner is not None and owner.element is not None:
                owner.element.text.append(f" {alt} ")
            elif alt and owner is not None and owner.label is not None:
                owner.label.text.append(f" {alt} ")
            elif alt:
                self._flush()
                self.items.append(f"image {json.dumps(alt, ensure_ascii=False)}")
            return
        element = self._element(tag, values)
        if element is not None:
            if owner is not None and owner.label is not None and not owner.label.for_id:
                owner.label.target = owner.label.target or element
            self._flush()
            self.items.append(element)
            if tag not in _VOID:
                self.stack.append(_Open(tag, element=element))
            return
        if tag == "label":
            label = _Label(values.get("for", ""))
            self._flush()
            self.items.append(label)
            self.stack.append(_Open(tag, label=label))
            return
        if tag not in _VOID:
            self.stack.append(_Open(tag))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                while len(self.stack) > index:
                    self._close(self.stack.pop())
                return

    def handle_data(self, data: str) -> None:
        if self.skip_depth or not data:
            return
        owner = self._innermost()
        if owner is None:
            self.line.append(data)
        elif owner.label is not None:
            owner.label.text.append(data)
        elif owner.element is not None:
            element = owner.element
            if element.role == "combobox" and element.options and self.stack[-1].tag == "option":
                element.options[-1][0].append(data)
            elif element.role != "combobox":
                element.text.append(data)

    def close(self) -> None:
        super().close()
        while self.stack:
            self._close(self.stack.pop())
        self._flush()


class HtmlStateMapper:
    """HTML (or an accessibility-tree dump) → an id-tagged element list with text as plain lines.

    ```python
    from dreamgym_sdk.experience import HtmlStateMapper

    html = '<h1>Shop</h1><input name="q" placeholder="Search" value="shoes"><button>Buy now</button>'
    print(HtmlStateMapper().map(html))
    # Shop
    # [1] textbox "Search" value="shoes"
    # [2] button "Buy now"
    ```

    Interactive elements (links, buttons, inputs, selects, textareas, elements with an interactive ARIA
    role or an ``onclick``) become ``[id] role "label"`` lines, with ``value="..."``, ``checked``,
    ``disabled`` and a select's ``options=[...]`` when they apply. Labels come from ``aria-label``, a
    ``<label for>``, the element's text (or an image's ``alt`` inside it), ``placeholder``, ``title``,
    ``value`` or ``name``, in that order. Headings, paragraphs and other text become plain lines (table
    cells joined with `` | ``). ``script``/``style``/``head``/``template`` and hidden elements (``hidden``,
    ``aria-hidden="true"``, ``display:none``, ``visibility:hidden``, ``type="hidden"``) are skipped.
    Password values are never shown.

    Ids are stable: an element's own ``bid``/``data-bid`` attribute (BrowserGym convention; see
    ``id_attributes``) when it has one, otherwise its position among the interactive elements in document
    order (1, 2, ...), skipping numbers already taken by attributes.

    Text without HTML tags is read as an accessibility-tree dump (BrowserGym's ``[12] button 'Buy now'``
    lines or Playwright's ``- button "Buy now" [ref=e12]`` snapshots) and normalised to the same format.

    Args:
        id_attributes: attributes that carry an element's own id, first found wins (add ``"id"`` to use
            HTML ids).
        max_label_chars: labels and values longer than this are cut with ``…``.
        max_chars: when set, the state is cut to this many characters with a final ``…`` line.
    """

    def __init__(
        self,
        *,
        id_attributes: tuple[str, ...] = ("bid", "data-bid"),
        max_label_chars: int = 80,
        max_chars: int | None = None,
    ) -> None:
        self.id_attributes = id_attributes
        self.max_label_chars = max_label_chars
        self.max_chars = max_chars

    def map(self, raw_observation: str) -> str:
        """The compact state of ``raw_observation`` (HTML or an accessibility tree)."""
        if re.search(r"<[A-Za-z!/][^>]*>", raw_observation):
            lines = self._from_html(raw_observation)
        else:
            lines = self._from_accessibility_tree(raw_observation)
        text = "\n".join(lines)
        if self.max_chars is not None and len(text) > self.max_chars:
            text = text[: max(self.max_chars - 2, 0)].rsplit("\n", 1)[0] + "\n…"
        return text

    # -- HTML ------------------------------------------------------------------------------------------
    def _from_html(self, html: str) -> list[str]:
        collector = _Collector(self.id_attributes)
        collector.feed(html)
        collector.close()
        items = collector.items
        elements = [i for i in items if isinstance(i, _Element)]
        by_html_id = {e.attrs["id"]: e for e in elements if e.attrs.get("id")}
        for label in (i for i in items if isinstance(i, _Label)):
            target = by_html_id.get(label.for_id) if label.for_id else label.target
            if target is not None and target.label_from is None:
                target.label_from = _squash("".join(label.text))
                label.used = True
        taken = {e.existing_id for e in elements if e.existing_id is not None}
        counter = 0
        for element in elements:
            if element.existing_id is not None:
                element.assigned_id = element.existing_id
                continue
            counter += 1
            while str(counter) in taken:
                counter += 1
            element.assigned_id = str(counter)
        lines: list[str] = []
        for item in items:
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, _Label):
                text = _squash("".join(item.text))
                if not item.used and text:
                    lines.append(text)
            else:
                lines.append(self._render(item))
        return lines

    def _clip(self, text: str) -> str:
        return text if len(text) <= self.max_label_chars else text[: self.max_label_chars - 1] + "…"

    def _quote(self, text: str) -> str:
        return json.dumps(self._clip(text), ensure_ascii=False)

    def _render(self, element: _Element) -> str:
        attrs = element.attrs
        text = _squash("".join(element.text))
        kind = attrs.get("type", "").lower()
        is_textbox = element.role in ("textbox", "searchbox")
        candidates = [attrs.get("aria-label", ""), element.label_from or ""]
        if not is_textbox:
            candidates.append(text)
        candidates += [attrs.get("placeholder", ""), attrs.get("title", ""), attrs.get("alt", "")]
        if element.role == "button" and kind in ("submit", "button", "reset"):
            candidates.append(attrs.get("value", "") or kind.capitalize())
        candidates.append(attrs.get("name", ""))
        label = next((_squash(c) for c in candidates if _squash(c)), "")
        parts = [f"[{element.assigned_id}] {element.role}"]
        if label:
            parts.append(self._quote(label))
        if is_textbox and kind != "password":
            value = attrs.get("value", "") if "value" in attrs else text
            if _squash(value):
                parts.append(f"value={self._quote(_squash(value))}")
        if element.role == "combobox" and element.options:
            names = [_squash("".join(words)) for words, _ in element.options]
            chosen = next((n for n, (_, sel) in zip(names, element.options, strict=True) if sel), names[0])
            parts.append(f"value={self._quote(chosen)}")
            parts.append("options=[" + ", ".join(self._quote(n) for n in names) + "]")
        if "checked" in attrs or attrs.get("aria-checked", "").lower() == "true":
            parts.append("checked")
        if "disabled" in attrs or attrs.get("aria-disabled", "").lower() == "true":
            parts.append("disabled")
        return " ".join(parts)

    # -- accessibility trees ---------------------------------------------------------------------------
    def _from_accessibility_tree(self, dump: str) -> list[str]:
        lines: list[str] = []
        counter = 0
        for raw in dump.splitlines():
            line = raw.strip()
            if line.startswith("- "):
                line = line[2:].strip()
            if not line:
                continue
            node = _parse_ax_line(line)
            if node is None:
                lines.append(_squash(line))
                continue
            role, name, node_id, rest, trailing = node
            if role in _AX_TEXT:
                text = name or trailing
                if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                    text = _unquote(text)
                if text:
                    lines.append(_squash(text))
                continue
            if role in _AX_SKIP or (not name and node_id is None):
                continue
            if node_id is None:
                if role not in _ARIA_ROLES:
                    if name:
                        lines.append(name)
                    continue
                counter += 1
                node_id = str(counter)
            parts = [f"[{node_id}] {role}"]
            if name:
                parts.append(self._quote(name))
            found = re.search(r"value=(['\"])(.*?)\1", rest)
            value = found.group(2) if found else trailing if role in _AX_VALUED else ""
            if value:
                parts.append(f"value={self._quote(value)}")
            for state in ("checked", "disabled"):
                if re.search(rf"\b{state}(?:=['\"]?(?:true|mixed)['\"]?)?(?![=\w])", rest):
                    parts.append(state)
            lines.append(" ".join(parts))
        return lines


_AX_TEXT = _words("statictext text paragraph heading labeltext caption cell columnheader ")
_AX_SKIP = _words(
    "generic none group list listitem rootwebarea document main navigation region banner "
    "contentinfo section article form table row rowgroup linebreak /url "
)
_AX_VALUED = _words("textbox searchbox combobox spinbutton slider")
_BROWSERGYM = re.compile(
    r"^\[(?P<id>[^\]]+)\]\s+(?P<role>[A-Za-z/]+)\s*(?P<name>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")?(?P<rest>.*)$"
)
_PLAYWRIGHT = re.compile(
    r"^(?P<role>[A-Za-z/]+)\s*(?P<name>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')?\s*(?P<attrs>(?:\[[^\]]*\]\s*)*):?\s*(?P<rest>.*)$"
)
_KNOWN_ROLES = (
    _ARIA_ROLES
    | _AX_TEXT
    | _AX_SKIP
    | _words(
        "img image listbox menu menubar tablist tabpanel dialog alert status separator figure "
        "search term definition strong emphasis code blockquote note tooltip progressbar meter "
        "toolbar tree grid radiogroup alertdialog complementary rowheader legend insertion "
        "deletion time math label "
    )
)


def _unquote(token: str | None) -> str:
    if not token:
        return ""
    return _squash(token[1:-1].replace("\\'", "'").replace('\\"', '"'))


def _parse_ax_line(line: str) -> tuple[str, str, str | None, str, str] | None:
    """``(role, name, id, properties, text)`` of one accessibility-tree line, or ``None`` for plain text.

    ``properties`` is what follows the name (``value='x', checked='true'`` or ``[checked] [ref=e1]``);
    ``text`` is a Playwright node's inline text after the colon (``- textbox "Search": shoes``)."""
    match = _BROWSERGYM.match(line)
    if match:
        return match["role"].lower(), _unquote(match["name"]), match["id"], match["rest"], ""
    match = _PLAYWRIGHT.match(line)
    if match and match["role"].lower() in _KNOWN_ROLES:
        attrs = match["attrs"] or ""
        ref = re.search(r"\[ref=([^\]]+)\]", attrs)
        node_id = ref.group(1) if ref else None
        return match["role"].lower(), _unquote(match["name"]), node_id, attrs, _squash(match["rest"] or "")
    return None
