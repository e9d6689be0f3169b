"""The admissible commands of a TextWorld state, derived from its :class:`AbstractState`.

A real :class:`TextWorldEnv` lists ``info["admissible_commands"]``: TextWorld applies every rule of the
game's logic to the world's facts and words each applicable action with the rule's command template. A
:class:`~dreamgym_sdk.DreamEnv` only has the state its experience model predicted, so
:func:`admissible_commands` applies the same rules to the abstract state::

    location: kitchen
    exits: north (plain door: closed)
    objects: counter [on: knife], fridge (open) [in: red potato (uncut)], stove
    inventory: yellow apple (raw, uncut)

gives ``close fridge``, ``cook yellow apple with stove``, ``drop yellow apple``, ``eat yellow apple``,
``examine counter``, ``examine fridge``, ``examine knife``, ``examine red potato``, ``examine stove``,
``insert yellow apple into fridge``, ``inventory``, ``look``, ``open plain door``, ``prepare meal``,
``put yellow apple on counter``, ``put yellow apple on stove``, ``take knife from counter`` and
``take red potato from fridge``.

The cooking games (:class:`CookingSpec`) and the custom quests (:class:`CustomSpec`) use different
logic, so the rules are chosen by ``kind``. The abstract state does not show every fact the rules test;
the others are inferred:

- **Object kinds.** A container is an object with an openness state (``open``, ``closed``, ``locked``)
  or contents ``in`` it; a supporter has contents ``on`` it. Empty furniture is recognised by name: the
  furniture of the cooking games (counter, stove, BBQ, ...) or, in custom quests, the last word of the
  name (``shelf``, ``table``, ``bed stand``, ... from TextWorld's house grammar). Any other object in
  the room is portable (``take X``). Containers without an openness state (the BBQ) take nothing in.
- **Food** (cooking games) is an object with a cooking or cutting state, a cooking-game food's name, or
  the ``meal``. Whether it is edible or still needs cooking is hidden: raw vegetables and fruit, cooked
  food and the meal are edible, raw meat, fish, eggs and potatoes are not, burned food never is. In
  custom quests, food is recognised by the last word of its name and is always edible.
- **Recipe ingredients** are hidden, but the score counts them: a cooking game scores a point for each
  ingredient collected (and each preparation done) before the meal can be prepared. So ``prepare meal``
  is listed in the kitchen when the player carries food other than the meal and the score is above 0
  (exact for one-ingredient recipes; when the state shows no score, carrying food is enough). Games
  made with ``cook=False`` mark the recipe's ingredients as cooked (so ``cook X with Y`` burns them);
  that is only visible on food that shows a cooking state.
- **Inventory capacity** (games made with ``drop=True``) is hidden: ``take`` is always listed.
- **Keys** are objects whose name ends in ``key``, ``keycard``, ``latchkey`` or ``passkey``. A key fits
  the lock whose name starts with the same words (``type M latchkey`` opens the ``type M safe``), as
  TextWorld's grammar names them.

``docs/integrations/textworld.md`` gives the measured agreement with TextWorld's own lists and the
command that measures it (``benchmarks/bench_textworld_admissible.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, cast

from dreamgym_sdk.types import Task

from .state import AbstractState, Entity

__all__ = ["GameKind", "admissible_commands", "task_admissible"]

GameKind = Literal["cooking", "custom"]
"""Which TextWorld logic a game follows: a cooking game or a custom quest (the ``kind`` of its spec)."""

_OPENNESS = frozenset({"open", "closed", "locked"})
_COOKING_STATES = frozenset({"raw", "fried", "roasted", "grilled", "burned"})
_COOKED = frozenset({"fried", "roasted", "grilled"})
_CUTS_DONE = frozenset({"sliced", "chopped", "diced"})
_CUTTING_STATES = _CUTS_DONE | {"uncut"}
_KEY_NOUNS = ("key", "keycard", "latchkey", "passkey")
_DIRECTIONS = ("north", "south", "east", "west")
_CUTS = ("chop", "dice", "slice")

# The cooking games' world (textworld.challenges.tw_cooking): furniture by kind, heat sources, knives.
_COOKING_CONTAINERS = frozenset({"fridge", "refrigerator", "oven", "BBQ", "toolbox"})
_COOKING_SUPPORTERS = frozenset(
    {
        "counter", "table", "kitchen island", "stove", "shelf", "patio table", "patio chair",
        "showcase", "sofa", "couch", "bed", "toilet", "workbench",
    }
)  # fmt: skip
_HEAT_SOURCES = frozenset({"stove", "oven", "BBQ"})
_SHARP = frozenset({"knife"})
_COOKING_LOCATION = "kitchen"
_MEAL = "meal"

# The cooking games' foods. Edible raw (a cookable one shows a "raw" state):
_EDIBLE = frozenset(
    {
        "carrot", "red onion", "white onion", "yellow onion", "lettuce", "red apple", "yellow apple",
        "green apple", "banana", "tomato", "red hot pepper", "green hot pepper", "red bell pepper",
        "yellow bell pepper", "green bell pepper", "orange bell pepper", "black pepper", "flour", "salt",
        "sugar", "block of cheese", "cilantro", "parsley",
    }
)  # fmt: skip
# Inedible until cooked (they show no cooking state until then):
_NEEDS_COOKING = frozenset(
    {
        "egg", "chicken wing", "chicken leg", "chicken breast", "pork chop", "red tuna", "white tuna",
        "red potato", "yellow potato", "purple potato",
    }
)  # fmt: skip
_DRINKS = frozenset({"milk", "water"})
_OILS = frozenset({"vegetable oil", "peanut oil", "olive oil"})
_COOKING_FOODS = _EDIBLE | _NEEDS_COOKING | _DRINKS | _OILS | {_MEAL}

# The nouns of TextWorld's house grammar (textworld/generator/data/text_grammars/house_obj.twg).
_HOUSE_CONTAINERS = frozenset(
    {
        "chest", "box", "safe", "locker", "cabinet", "basket", "trunk", "case", "drawer", "dresser",
        "toolbox", "coffer", "crate", "suitcase", "display", "fridge", "refrigerator", "freezer",
        "portmanteau", "bureau",
    }
)  # fmt: skip
_HOUSE_SUPPORTERS = frozenset(
    {
        "shelf", "table", "pedestal", "slab", "board", "counter", "rack", "bench", "workbench", "stand",
        "chair", "plate", "bowl", "pan", "platter", "saucepan", "bed", "couch", "bookshelf", "desk",
        "bed stand", "mantelpiece", "mantle", "bar", "recliner", "armchair",
    }
)  # fmt: skip
_HOUSE_FOODS = frozenset(
    {
        "watermelon", "melon", "honeydew", "strawberry", "apple", "pear", "grape", "kiwi", "cantaloupe",
        "banana", "coconut", "durian", "berry", "broccoli", "carrot", "cucumber", "onion",
        "garlic clove", "potato", "cabbage", "cauliflower", "pizza", "salad", "loaf of bread",
        "sandwich", "legume", "cashew", "peanut", "burger", "stick of butter", "fondue",
        "chocolate bar", "gummy bear", "candy bar", "licorice strip", "cookie",
    }
)  # fmt: skip


def admissible_commands(state: str | AbstractState, *, kind: GameKind = "cooking") -> list[str]:
    r"""The commands TextWorld would admit in ``state``, sorted and without duplicates.

    The commands follow the rules and the wording of TextWorld's logic for games of ``kind``; facts the
    abstract state does not show (edibility, the recipe, inventory capacity) are inferred as the module
    docstring describes, so the list approximates the real one.

    ```python
    from dreamgym_sdk.integrations.textworld import admissible_commands

    state = "location: kitchen\nobjects: table [on: knife]\ninventory: carrot (raw, uncut)"
    assert "take knife from table" in admissible_commands(state)
    ```

    Args:
        state: an :class:`AbstractState` or its rendered text (read with :meth:`AbstractState.parse`).
            A predicted state may be slightly malformed: an exit or object that does not parse is
            skipped, and the rest of the state still counts.
        kind: ``"cooking"`` for :class:`CookingSpec` games, ``"custom"`` for :class:`CustomSpec` quests.

    Raises:
        ValueError: ``kind`` is unknown.
    """
    if kind not in ("cooking", "custom"):
        raise ValueError(f"unknown game kind {kind!r}: expected 'cooking' or 'custom'")
    parsed = _read(state) if isinstance(state, str) else state
    cooking = kind == "cooking"
    objects = parsed.objects or ()
    inventory = parsed.inventory or ()
    keys = [item.name for item in inventory if _noun(item.name, _KEY_NOUNS)]
    commands: set[str] = {"look", "inventory"}

    for exit_ in parsed.exits or ():
        states = set(exit_.door_states)
        passable = exit_.door is None or "open" in states or not states & _OPENNESS
        if passable and exit_.direction in _DIRECTIONS:
            commands.add(f"go {exit_.direction}")
        if exit_.door is not None:
            commands.update(_lock_commands(exit_.door, states, keys))
            if not cooking:
                commands.add(f"examine {exit_.door}")

    for thing in objects:
        commands.add(f"examine {thing.name}")
        what = _furniture(thing, cooking)
        if what is None:
            commands.add(f"take {thing.name}")
            continue
        states = set(thing.states)
        if what == "container":
            commands.update(_lock_commands(thing.name, states, keys))
            if "open" not in states:
                continue  # closed, locked, or never open (the BBQ): nothing is taken out or put in
        for content in thing.contents:
            commands.add(f"examine {content.name}")
            commands.add(f"take {content.name} from {thing.name}")
        verb, preposition = ("insert", "into") if what == "container" else ("put", "on")
        commands.update(f"{verb} {item.name} {preposition} {thing.name}" for item in inventory)

    for item in inventory:
        commands.add(f"drop {item.name}")
        if not cooking:
            commands.add(f"examine {item.name}")
            if _noun(item.name, _HOUSE_FOODS) or item.name.endswith("berry"):
                commands.add(f"eat {item.name}")
    if cooking:
        commands.update(_cooking_commands(parsed, objects, inventory))
    return sorted(commands)


def _read(text: str) -> AbstractState:
    """Parse ``text``; when it is malformed, keep the location and every exit and object that parse."""
    try:
        return AbstractState.parse(text)
    except ValueError:
        pass
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == "location":
            fields[key] = value
        elif key in ("exits", "objects", "inventory"):
            parts: list[Any] = []
            for part in _split(value):
                try:
                    parts.extend(getattr(AbstractState.parse(f"{key}: {part}"), key))
                except ValueError:
                    continue
            fields[key] = tuple(parts)
    return AbstractState(**fields)


def _split(text: str) -> list[str]:
    """Split a rendered list at the commas outside brackets and parentheses."""
    parts: list[str] = []
    depth = start = 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip() not in ("", "none", "nothing")]


def _cooking_commands(
    state: AbstractState, objects: tuple[Entity, ...], inventory: tuple[Entity, ...]
) -> list[str]:
    """Eating, drinking, cooking, cutting and preparing the meal (the cooking games only)."""
    commands: list[str] = []
    heat_sources = [thing.name for thing in objects if thing.name in _HEAT_SOURCES]
    knives = [item.name for item in inventory if item.name in _SHARP]
    carries_food = False
    for item in inventory:
        states = set(item.states)
        if item.name not in _COOKING_FOODS and not states & (_COOKING_STATES | _CUTTING_STATES):
            continue
        carries_food = carries_food or item.name != _MEAL
        burned = "burned" in states
        cooked = bool(states & _COOKED)
        if not burned and (cooked or "raw" in states or item.name == _MEAL or item.name in _EDIBLE):
            commands.append(f"eat {item.name}")
        if item.name in _DRINKS:
            commands.append(f"drink {item.name}")
        cut = bool(states & _CUTS_DONE)  # cut food showing no cooking state was prepared by the game
        if not burned and (cooked or cut or "raw" in states or item.name in (_MEAL, *_NEEDS_COOKING)):
            commands.extend(f"cook {item.name} with {source}" for source in heat_sources)
        if "uncut" in states:
            commands.extend(f"{verb} {item.name} with {knife}" for verb in _CUTS for knife in knives)
    if carries_food and state.location == _COOKING_LOCATION and _recipe_done(state):
        commands.append("prepare meal")
    return commands


def _recipe_done(state: AbstractState) -> bool:
    """Whether the score allows that the recipe's ingredients are collected: each scores a point, so a
    score of 0 means none is (``True`` when the state shows no score)."""
    return state.score is None or not state.max_score or state.score > 0


def _furniture(thing: Entity, cooking: bool) -> Literal["container", "supporter"] | None:
    """Whether a room object is a container or a supporter; ``None`` for a portable object."""
    if set(thing.states) & _OPENNESS or thing.relation == "in":
        return "container"
    if thing.relation == "on":
        return "supporter"
    if cooking:
        if thing.name in _COOKING_CONTAINERS:
            return "container"
        return "supporter" if thing.name in _COOKING_SUPPORTERS else None
    if _noun(thing.name, _HOUSE_CONTAINERS):
        return "container"
    return "supporter" if _noun(thing.name, _HOUSE_SUPPORTERS) else None


def _lock_commands(name: str, states: set[str], keys: list[str]) -> list[str]:
    """Opening, closing, locking and unlocking a door or container with the keys that fit it."""
    fitting = [key for key in keys if _prefix(key) == _prefix(name)]
    if "open" in states:
        return [f"close {name}"]
    if "closed" in states:
        return [f"open {name}", *(f"lock {name} with {key}" for key in fitting)]
    if "locked" in states:
        return [f"unlock {name} with {key}" for key in fitting]
    return []


def _noun(name: str, nouns: frozenset[str] | tuple[str, ...]) -> bool:
    """Whether ``name`` is one of ``nouns``, possibly after adjectives."""
    return any(name == noun or name.endswith(f" {noun}") for noun in nouns)


def _prefix(name: str) -> str:
    """The words before the last one (TextWorld names a key and its lock with the same prefix)."""
    return name.rpartition(" ")[0]


def task_admissible(task: Task) -> Callable[[str], list[str]]:
    """:func:`admissible_commands` for the states of ``task``, with the game kind its spec names
    (``task.metadata["spec"]["kind"]``; cooking when it names none). Core finds it through the
    ``dreamgym_sdk.admissible`` entry point ``textworld`` (see
    :func:`dreamgym_sdk.training.run.admissible_for`)."""
    spec: object = task.metadata.get("spec")
    custom = isinstance(spec, dict) and cast(dict[str, Any], spec).get("kind") == "custom"
    return functools.partial(admissible_commands, kind="custom" if custom else "cooking")
