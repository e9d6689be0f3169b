"""The abstract state of a TextWorld game: a compact, canonical text the agent and the experience model
both see.

:class:`TextWorldStateMapper` builds an :class:`AbstractState` from TextWorld's structured infos (the
``facts`` of the world, the score) rather than from its prose, and :meth:`AbstractState.render` writes it
as a few ``key: value`` lines; :meth:`AbstractState.parse` reads them back. Example::

    location: kitchen
    exits: north (plain door: closed), south
    objects: counter [on: red apple (raw, uncut), yellow potato (raw, uncut)], fridge (closed), stove
    inventory: red potato (raw, uncut)
    score: 1/3
    feedback: You take the red potato from the counter. Your score has just gone up by one point.

Only what the player can perceive is listed: objects in the current room, on supporters and inside open
containers; the contents of closed containers and of other rooms stay hidden. Lists are sorted by name,
so the same world state always renders to the same text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ._text import clean_feedback, one_line

__all__ = [
    "DEFAULT_STATES",
    "AbstractState",
    "Entity",
    "Exit",
    "Fact",
    "TextWorldStateMapper",
]

DEFAULT_STATES: tuple[str, ...] = (
    "open", "closed", "locked",
    "raw", "fried", "roasted", "grilled", "burned",
    "sliced", "chopped", "diced", "uncut",
)  # fmt: skip
"""Unary facts shown as an object's states, in display order."""

_DIRECTIONS = ("north", "south", "east", "west")
_DOOR_STATES = ("open", "closed", "locked")
_HIDDEN_CONTAINER_STATES = frozenset({"closed", "locked"})


@dataclass(frozen=True, slots=True)
class Fact:
    """One TextWorld proposition, e.g. ``on(knife, table)``, with the types of its arguments."""

    predicate: str
    args: tuple[str, ...]
    types: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: Any) -> Fact:
        """Convert a ``textworld.logic.Proposition`` (or a :class:`Fact`) to a :class:`Fact`."""
        if isinstance(value, Fact):
            return value
        arguments = tuple(value.arguments)
        return cls(value.name, tuple(str(a.name) for a in arguments), tuple(str(a.type) for a in arguments))

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(self.args)})"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Entity(_Frozen):
    """A visible object, its states and what lies on or in it."""

    name: str
    states: tuple[str, ...] = ()
    """E.g. ``("closed",)`` or ``("raw", "uncut")``."""
    relation: Literal["on", "in"] | None = None
    """How :attr:`contents` relate to this object: on a supporter or in an open container."""
    contents: tuple[Entity, ...] = ()

    def render(self) -> str:
        """The entity as the state text shows it, e.g. ``table [on: knife]`` or ``carrot (raw, uncut)``."""
        text = self.name
        if self.states:
            text += f" ({', '.join(self.states)})"
        if self.contents:
            text += f" [{self.relation or 'in'}: {', '.join(c.render() for c in self.contents)}]"
        return text


class Exit(_Frozen):
    """A way out of the current room."""

    direction: str
    door: str | None = None
    door_states: tuple[str, ...] = ()
    destination: str | None = None
    """The room it leads to (only when the mapper is asked to show destinations)."""

    def render(self) -> str:
        """The exit as the state text shows it, e.g. ``north`` or ``east to kitchen (door: closed)``."""
        text = self.direction if self.destination is None else f"{self.direction} to {self.destination}"
        if self.door is not None:
            states = f": {', '.join(self.door_states)}" if self.door_states else ""
            text += f" ({self.door}{states})"
        return text


class AbstractState(_Frozen):
    """The compact state of a TextWorld game (see the module docstring for the text format).

    ``None`` fields are unknown and not rendered; empty tuples render as ``nothing`` / ``none``.
    """

    location: str | None = None
    exits: tuple[Exit, ...] | None = None
    objects: tuple[Entity, ...] | None = None
    """Visible objects of the current room, with their contents."""
    inventory: tuple[Entity, ...] | None = None
    score: float | None = None
    max_score: float | None = None
    description: str | None = None
    """The room's prose, used only when the world's facts are not available."""
    feedback: str | None = None
    """The game's answer to the last action, on one line."""

    def render(self) -> str:
        """The state as ``key: value`` lines, in a fixed order."""
        lines: list[str] = []
        if self.location is not None:
            lines.append(f"location: {self.location}")
        if self.exits is not None:
            lines.append(f"exits: {', '.join(e.render() for e in self.exits) or 'none'}")
        if self.objects is not None:
            lines.append(f"objects: {', '.join(o.render() for o in self.objects) or 'nothing'}")
        if self.description is not None:
            lines.append(f"description: {self.description}")
        if self.inventory is not None:
            lines.append(f"inventory: {', '.join(o.render() for o in self.inventory) or 'nothing'}")
        if self.score is not None:
            total = "?" if self.max_score is None else _number(self.max_score)
            lines.append(f"score: {_number(self.score)}/{total}")
        if self.feedback is not None:
            lines.append(f"feedback: {self.feedback}")
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> AbstractState:
        """Read a state written by :meth:`render` (unknown lines are ignored).

        Raises:
            ValueError: a known line is malformed.
        """
        fields: dict[str, Any] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(": ")
            if not sep:
                continue
            if key == "location":
                fields["location"] = value
            elif key == "exits":
                fields["exits"] = () if value == "none" else tuple(_parse_exit(p) for p in _split(value))
            elif key in ("objects", "inventory"):
                fields[key] = () if value == "nothing" else tuple(_parse_entity(p) for p in _split(value))
            elif key == "description":
                fields["description"] = value
            elif key == "score":
                score, _, total = value.partition("/")
                fields["score"] = float(score)
                fields["max_score"] = None if total in ("", "?") else float(total)
            elif key == "feedback":
                fields["feedback"] = value
        return cls(**fields)

    def __str__(self) -> str:
        return self.render()


class TextWorldStateMapper:
    """Turns TextWorld's output and infos into an :class:`AbstractState`.

    :meth:`state` reads ``infos["facts"]`` (TextWorld propositions or :class:`Fact` objects) for the location,
    exits, visible objects and inventory, and ``infos["score"]``/``infos["max_score"]`` for progress.
    Without facts it falls back to the room description and the inventory text.

    Args:
        include_feedback: add the game's answer to the last action (on one line).
        show_destinations: name the room behind each exit (the player only learns it by going there).
        states: unary facts shown as object states, in display order.
        room_descriptions: keep the prose of room descriptions in the feedback; by default only their
            ``-= Room =-`` title stays, since the structured lines already list what they describe.
        max_feedback_chars: cut longer feedback (``None`` keeps it whole).
    """

    def __init__(
        self,
        *,
        include_feedback: bool = True,
        show_destinations: bool = False,
        states: Collection[str] = DEFAULT_STATES,
        room_descriptions: bool = False,
        max_feedback_chars: int | None = None,
    ) -> None:
        self.include_feedback = include_feedback
        self.show_destinations = show_destinations
        self.states = tuple(states)
        self.room_descriptions = room_descriptions
        self.max_feedback_chars = max_feedback_chars

    def state(self, infos: Mapping[str, Any], *, feedback: str | None = None) -> AbstractState:
        """The abstract state described by ``infos``; ``feedback`` is the game's text for the last
        action (``None`` at reset)."""
        score, max_score = infos.get("score"), infos.get("max_score")
        common: dict[str, Any] = {
            "score": None if score is None else float(score),
            "max_score": None if max_score is None else float(max_score),
            "feedback": self._feedback(feedback),
        }
        facts = infos.get("facts")
        if facts is None:
            return self._from_prose(infos, common)
        return self._from_facts([Fact.of(f) for f in facts], common)

    def render(self, infos: Mapping[str, Any], *, feedback: str | None = None) -> str:
        """Shortcut for ``mapper.state(infos, feedback=feedback).render()``."""
        return self.state(infos, feedback=feedback).render()

    def map(self, raw_observation: str) -> str:
        """The abstract state of a bare TextWorld text (the :class:`~dreamgym_sdk.experience.mappers.
        StateMapper` protocol).

        Text alone carries no facts, so this is the prose fallback: the location comes from a room
        title in the text and the rest is kept as the description. Prefer :meth:`state` with the
        game's infos, as :class:`TextWorldEnv` does.
        """
        return self.state({"description": raw_observation}).render()

    def _feedback(self, feedback: str | None) -> str | None:
        if feedback is None or not self.include_feedback:
            return None
        text = clean_feedback(feedback)
        if not self.room_descriptions:
            text = _strip_room_descriptions(text)
        text = one_line(text)
        if self.max_feedback_chars is not None and len(text) > self.max_feedback_chars:
            text = text[: self.max_feedback_chars].rstrip() + "..."
        return text

    def _from_facts(self, facts: list[Fact], common: dict[str, Any]) -> AbstractState:
        unary: dict[str, set[str]] = {}
        children: dict[str, list[tuple[str, Literal["on", "in"]]]] = {}
        room_objects: dict[str, list[str]] = {}
        here: str | None = None
        carried: list[str] = []
        for fact in facts:
            p, args = fact.predicate, fact.args
            if len(args) == 1:
                unary.setdefault(args[0], set()).add(p)
            elif p == "at" and len(args) == 2:
                if fact.types[:1] == ("P",) or args[0] == "P":
                    here = args[1]
                else:
                    room_objects.setdefault(args[1], []).append(args[0])
            elif p == "in" and len(args) == 2:
                if fact.types[1:2] == ("I",) or args[1] == "I":
                    carried.append(args[0])
                else:
                    children.setdefault(args[1], []).append((args[0], "in"))
            elif p == "on" and len(args) == 2:
                children.setdefault(args[1], []).append((args[0], "on"))

        def entity(name: str, seen: frozenset[str]) -> Entity:
            own = unary.get(name, set())
            states = tuple(s for s in self.states if s in own)
            inside = children.get(name, [])
            if not inside or name in seen or (own & _HIDDEN_CONTAINER_STATES and inside[0][1] == "in"):
                return Entity(name=name, states=states)
            contents = tuple(sorted((entity(c, seen | {name}) for c, _ in inside), key=lambda e: e.name))
            return Entity(name=name, states=states, relation=inside[0][1], contents=contents)

        def entities(names: Iterable[str]) -> tuple[Entity, ...]:
            return tuple(sorted((entity(n, frozenset()) for n in names), key=lambda e: e.name))

        return AbstractState(
            location=here,
            exits=None if here is None else self._exits(facts, here, unary),
            objects=None if here is None else entities(room_objects.get(here, [])),
            inventory=entities(carried),
            **common,
        )

    def _exits(self, facts: list[Fact], here: str, unary: Mapping[str, set[str]]) -> tuple[Exit, ...]:
        doors = {
            f.args[2]: f.args[1]
            for f in facts
            if f.predicate == "link" and len(f.args) == 3 and f.args[0] == here
        }
        exits: list[Exit] = []
        for fact in facts:
            direction = fact.predicate.removesuffix("_of")
            if direction in _DIRECTIONS and len(fact.args) == 2 and fact.args[1] == here:
                destination = fact.args[0]
                door = doors.get(destination)
                door_states = tuple(s for s in _DOOR_STATES if door is not None and s in unary.get(door, ()))
                exits.append(
                    Exit(
                        direction=direction,
                        door=door,
                        door_states=door_states,
                        destination=destination if self.show_destinations else None,
                    )
                )
        return tuple(sorted(exits, key=lambda e: _DIRECTIONS.index(e.direction)))

    def _from_prose(self, infos: Mapping[str, Any], common: dict[str, Any]) -> AbstractState:
        description = clean_feedback(infos.get("description"))
        location = None
        title = _ROOM_TITLE.search(description)
        if title:
            location = title.group(1).strip().lower()
            description = description[title.end() :]
        inventory_text = infos.get("inventory")
        inventory = None if inventory_text is None else _parse_inventory_text(str(inventory_text))
        return AbstractState(
            location=location, description=one_line(description) or None, inventory=inventory, **common
        )


_ROOM_TITLE = re.compile(r"-=\s*(.+?)\s*=-")
_ENTITY = re.compile(
    r"^(?P<name>[^()\[\]]+?)(?: \((?P<states>[^()]*)\))?(?: \[(?P<rel>on|in): (?P<inner>.*)\])?$"
)
_EXIT = re.compile(
    r"^(?P<dir>\w+)(?: to (?P<dest>[^()]+?))?(?: \((?P<door>[^():]+?)(?:: (?P<states>[^()]*))?\))?$"
)
_ARTICLE = re.compile(r"^(a|an|the|some)\s+", re.I)


_TITLE_PARAGRAPH = re.compile(r"^\s*-=\s*.+?\s*=-")
_AFTER_DESCRIPTION = re.compile(r"Your score has|\*\*\*|You scored \d+ out of", re.I)


def _strip_room_descriptions(text: str) -> str:
    """Replace each room description (its ``-= Room =-`` title and the paragraphs after it) by the title;
    score and end-of-game paragraphs after a description are kept."""
    kept: list[str] = []
    in_description = False
    for paragraph in text.split("\n\n"):
        title = _TITLE_PARAGRAPH.match(paragraph)
        if title is not None:
            kept.append(title.group(0).strip())
            in_description = True
        elif not in_description or _AFTER_DESCRIPTION.search(paragraph):
            kept.append(paragraph)
            in_description = False
    return "\n\n".join(kept)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _split(text: str) -> list[str]:
    """Split a rendered list at the commas outside brackets and parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _parse_entity(text: str) -> Entity:
    match = _ENTITY.match(text)
    if match is None:
        raise ValueError(f"malformed object: {text!r}")
    states = tuple(s.strip() for s in (match["states"] or "").split(",") if s.strip())
    inner = match["inner"]
    if inner is None:
        return Entity(name=match["name"], states=states)
    rel: Literal["on", "in"] = "on" if match["rel"] == "on" else "in"
    return Entity(
        name=match["name"],
        states=states,
        relation=rel,
        contents=tuple(_parse_entity(p) for p in _split(inner)),
    )


def _parse_exit(text: str) -> Exit:
    match = _EXIT.match(text)
    if match is None:
        raise ValueError(f"malformed exit: {text!r}")
    states = tuple(s.strip() for s in (match["states"] or "").split(",") if s.strip())
    return Exit(direction=match["dir"], door=match["door"], door_states=states, destination=match["dest"])


def _parse_inventory_text(text: str) -> tuple[Entity, ...]:
    _, sep, items = one_line(text).partition(":")
    if not sep:
        return ()  # "You are carrying nothing."
    names = re.split(r",\s*|\s+and\s+", items.strip().rstrip("."))
    return tuple(
        sorted((Entity(name=_ARTICLE.sub("", n).strip()) for n in names if n.strip()), key=lambda e: e.name)
    )
