"""admissible_commands: TextWorld's command grammar applied to abstract states, checked against real games."""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreamgym_sdk import DreamEnv
from dreamgym_sdk.integrations.textworld import (
    AbstractState,
    CookingSpec,
    CustomSpec,
    Entity,
    Exit,
    GameInfo,
    GameKind,
    TextWorldEnv,
    admissible_commands,
    generate_games,
)
from dreamgym_sdk.testing import ScriptedExperienceModel

KITCHEN = """location: kitchen
exits: none
objects: counter, fridge (open) [in: red hot pepper (raw, uncut)], oven (closed), stove, table [on: cookbook]
inventory: orange bell pepper (raw, chopped)
score: 1/3
feedback: You take the orange bell pepper from the fridge. Your score has just gone up by one point."""


def commands(state: str, kind: GameKind = "cooking") -> list[str]:
    return admissible_commands(state, kind=kind)


def test_a_kitchen_gives_the_game_s_own_list() -> None:
    # TextWorld's info["admissible_commands"] in this state of a cooking game, word for word.
    assert commands(KITCHEN) == [
        "close fridge",
        "cook orange bell pepper with oven",
        "cook orange bell pepper with stove",
        "drop orange bell pepper",
        "eat orange bell pepper",
        "examine cookbook",
        "examine counter",
        "examine fridge",
        "examine oven",
        "examine red hot pepper",
        "examine stove",
        "examine table",
        "insert orange bell pepper into fridge",
        "inventory",
        "look",
        "open oven",
        "prepare meal",
        "put orange bell pepper on counter",
        "put orange bell pepper on stove",
        "put orange bell pepper on table",
        "take cookbook from table",
        "take red hot pepper from fridge",
    ]


def test_exits_and_doors() -> None:
    state = (
        "location: corridor\n"
        "exits: north, south (plain door: open), east (front door: closed), west (gate: locked)"
    )
    assert commands(state) == [
        "close plain door",
        "go north",
        "go south",
        "inventory",
        "look",
        "open front door",
    ]
    # Custom quests can also examine doors; destinations do not change the commands.
    custom = commands(state.replace("north", "north to kitchen"), kind="custom")
    assert {"examine plain door", "examine front door", "examine gate", "go north"} <= set(custom)


def test_food_rules_follow_the_hidden_facts_they_imply() -> None:
    state = (
        "location: kitchen\nobjects: stove, BBQ\n"
        "inventory: knife, red potato (uncut), carrot (raw, uncut), pork chop (grilled, sliced), "
        "yellow apple (burned), meal (raw), milk, salt"
    )
    got = set(commands(state))
    # Raw vegetables, cooked food, salt and the meal are edible; raw potatoes, burned food and milk are not.
    assert {"eat carrot", "eat pork chop", "eat meal", "eat salt"} <= got
    assert not {"eat red potato", "eat yellow apple", "eat milk", "eat knife"} & got
    assert "drink milk" in got
    # Anything raw, needing cooking or cooked can go on a heat source (again: it burns); burned food cannot.
    for food in ("red potato", "carrot", "pork chop", "meal"):
        assert {f"cook {food} with stove", f"cook {food} with BBQ"} <= got
    assert not any(c.startswith(("cook yellow apple", "cook salt", "cook milk", "cook knife")) for c in got)
    # The knife cuts uncut food it is carried with.
    cuts = {c for c in got if c.startswith(("slice", "dice", "chop"))}
    assert cuts == {
        f"{v} {food} with knife" for v in ("slice", "dice", "chop") for food in ("red potato", "carrot")
    }
    # The BBQ is a container that never opens: nothing goes into it.
    assert not any(c.startswith("insert") for c in got)
    assert "prepare meal" in got


def test_prepare_meal_needs_the_kitchen_and_food() -> None:
    assert "prepare meal" not in commands("location: kitchen\ninventory: meal (raw), knife")
    assert "prepare meal" not in commands("location: pantry\ninventory: carrot (raw, uncut)")


def test_prepare_meal_needs_an_ingredient_scored() -> None:
    # Each ingredient collected scores a point: with a score of 0 the carried food is a distractor, and
    # the game refuses to prepare the meal.
    assert "prepare meal" not in commands("location: kitchen\ninventory: carrot (raw, uncut)\nscore: 0/3")
    assert "prepare meal" in commands("location: kitchen\ninventory: carrot (raw, uncut)\nscore: 1/3")
    assert "prepare meal" in commands("location: kitchen\ninventory: carrot (raw, uncut)")


def test_portable_objects_on_the_floor_can_be_taken_furniture_cannot() -> None:
    got = set(commands("location: kitchen\nobjects: counter, knife, chicken wing, fridge (closed)"))
    assert {"take knife", "take chicken wing"} <= got
    assert not {"take counter", "take fridge"} & got


def test_custom_quests_use_their_own_rules() -> None:
    state = (
        "location: bedroom\nexits: west (type M door: locked)\n"
        "objects: recliner, type M safe (locked), box (locked), rusty bed stand, cloak\n"
        "inventory: kettle, type M latchkey, rotting apple"
    )
    got = set(commands(state, kind="custom"))
    # A key fits the locks named like it; every carried object can be examined; any food eaten.
    assert {"unlock type M safe with type M latchkey", "unlock type M door with type M latchkey"} <= got
    assert "unlock box with type M latchkey" not in got
    assert {"examine kettle", "examine type M latchkey", "eat rotting apple", "take cloak"} <= got
    assert {"put kettle on recliner", "put kettle on rusty bed stand"} <= got
    assert not {"eat kettle", "take recliner", "take rusty bed stand"} & got
    # The cooking games' rules differ: carried things cannot be examined there.
    assert "examine kettle" not in commands(state)


def test_a_malformed_part_is_skipped_not_fatal() -> None:
    state = (
        "location: kitchen\nexits: north, south (door\n"
        "objects: table [on: knife], fridge (open [in: milk]\nscore: ?"
    )
    assert commands(state) == [
        "examine knife",
        "examine table",
        "go north",
        "inventory",
        "look",
        "take knife from table",
    ]


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown game kind"):
        admissible_commands(KITCHEN, kind="coin")  # pyright: ignore[reportArgumentType]


NAMES = st.sampled_from(
    ["counter", "fridge", "oven", "stove", "BBQ", "table", "knife", "cookbook", "carrot", "red potato",
     "meal", "milk", "salt", "type M safe", "type M latchkey", "box", "rusty bench", "cloak"]
)  # fmt: skip
STATES = st.lists(
    st.sampled_from(["open", "closed", "locked", "raw", "fried", "burned", "uncut", "sliced"]),
    max_size=2,
    unique=True,
).map(tuple)
LEAVES = st.builds(Entity, name=NAMES, states=STATES)
ENTITIES = LEAVES | st.builds(
    Entity,
    name=NAMES,
    states=STATES,
    relation=st.sampled_from(["on", "in"]),
    contents=st.lists(LEAVES, min_size=1, max_size=3).map(tuple),
)
EXITS = st.builds(
    Exit,
    direction=st.sampled_from(["north", "south", "east", "west"]),
    door=st.none() | st.sampled_from(["plain door", "type M door"]),
    door_states=st.sampled_from([(), ("open",), ("closed",), ("locked",)]),
).filter(lambda e: e.door is not None or not e.door_states)
ABSTRACT_STATES = st.builds(
    AbstractState,
    location=st.none() | st.sampled_from(["kitchen", "pantry"]),
    exits=st.none() | st.lists(EXITS, max_size=3).map(tuple),
    objects=st.none() | st.lists(ENTITIES, max_size=4).map(tuple),
    inventory=st.none() | st.lists(LEAVES, max_size=3).map(tuple),
)


@given(ABSTRACT_STATES, st.sampled_from(["cooking", "custom"]))
def test_text_and_state_give_the_same_sorted_unique_list(state: AbstractState, kind: GameKind) -> None:
    listed = admissible_commands(state, kind=kind)
    assert listed == sorted(set(listed))
    assert {"look", "inventory"} <= set(listed)
    assert admissible_commands(state.render(), kind=kind) == listed
    assert admissible_commands(AbstractState.parse(state.render()), kind=kind) == listed


async def test_dream_env_lists_the_commands_of_predicted_states() -> None:
    after = KITCHEN.replace("oven (closed)", "oven (open)")
    model = ScriptedExperienceModel(
        [{"next_state": after, "reward": 0.0, "done": False}], initial_state=KITCHEN
    )
    env = DreamEnv(model, admissible=admissible_commands)
    _, info = await env.reset(task="cook")
    assert info["admissible_commands"] == commands(KITCHEN)
    result = await env.step("open oven")
    assert {"close oven", "insert orange bell pepper into oven"} <= set(result.info["admissible_commands"])


# Against real games ---------------------------------------------------------------------------------

RICH = CookingSpec(recipe=2, take=2, go=6, open=True, cook=True, cut=True)  # doors, knife, heat sources
RICH_CUSTOM = CustomSpec(world_size=4, nb_objects=10, quest_length=5)  # keys, locks, food


@pytest.fixture(scope="module")
def rich_games(game_dir: Path) -> dict[GameKind, GameInfo]:
    cooking = anyio.run(functools.partial(generate_games, RICH, game_dir, [0]))[0]
    custom = anyio.run(functools.partial(generate_games, RICH_CUSTOM, game_dir, [0]))[0]
    return {"cooking": cooking, "custom": custom}


HIDDEN = {"prepare", "take", "lock", "unlock"}
"""Verbs whose rules test facts the abstract state does not show (the recipe, inventory capacity, keys)."""


@dataclass
class Agreement:
    """Derived vs real admissible commands over many states."""

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter[tuple[str, str]])
    """(verb, "both" | "missed" | "extra") counts."""
    walkthrough_misses: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    walkthrough_admissible: int = 0

    def add(self, derived: set[str], real: set[str]) -> None:
        for label, found in (("both", derived & real), ("missed", real - derived), ("extra", derived - real)):
            self.pairs.update((command.split()[0], label) for command in found)

    def count(self, label: str, verb: str | None = None) -> int:
        return sum(n for (v, lab), n in self.pairs.items() if lab == label and verb in (None, v))

    def recall(self, verb: str | None = None) -> float:
        both = self.count("both", verb)
        return both / max(both + self.count("missed", verb), 1)

    def precision(self, verb: str | None = None) -> float:
        both = self.count("both", verb)
        return both / max(both + self.count("extra", verb), 1)

    def check_each_verb(self) -> None:
        """Every verb is found; every verb is exact except where hidden facts force a guess."""
        for verb in {verb for verb, _ in self.pairs}:
            assert self.recall(verb) >= 0.9, (verb, self.pairs)
            if verb not in HIDDEN:
                assert self.precision(verb) >= 0.95, (verb, self.pairs)


async def agreement(
    games: list[GameInfo], kind: GameKind, *, episodes: int = 4, max_steps: int = 30
) -> Agreement:
    """Play each game along its walkthrough, then with random admissible detours, comparing every state."""
    result = Agreement()
    async with TextWorldEnv(max_steps=max_steps) as env:
        for number, game in enumerate(games):
            for episode in range(episodes):
                # not the game's id: it hashes the compiled file, whose serial number is the compile date
                rng = random.Random(f"{kind}-{number}-{episode}")
                obs, info = await env.reset(task=game.to_task())
                for step in range(max_steps):
                    real = set(info["admissible_commands"])
                    derived = admissible_commands(obs, kind=kind)
                    assert derived == admissible_commands(info["abstract_state"], kind=kind)
                    result.add(set(derived), real)
                    if episode == 0:  # the walkthrough
                        if step >= len(game.walkthrough):
                            break
                        action = game.walkthrough[step]
                        if action in real:
                            result.walkthrough_admissible += 1
                            if action not in derived:
                                result.walkthrough_misses.append((action, obs))
                    elif rng.random() < 0.5 and info.get("policy_commands"):
                        action = info["policy_commands"][0]
                    else:
                        action = rng.choice(sorted(real))
                    obs, _, terminated, truncated, info = await env.step(action)
                    if terminated or truncated:
                        break
    return result


async def test_agrees_with_real_cooking_games(
    cooking_games: list[GameInfo], rich_games: dict[GameKind, GameInfo]
) -> None:
    result = await agreement([*cooking_games, rich_games["cooking"]], "cooking")
    assert result.walkthrough_misses == []
    assert result.walkthrough_admissible >= 25
    assert result.recall() >= 0.99 and result.precision() >= 0.98, result.pairs
    # Every kind of command is derived, not just the frequent ones.
    verbs = {verb for verb, _ in result.pairs}
    assert {"take", "put", "insert", "open", "close", "go", "cook", "slice", "eat", "prepare"} <= verbs
    result.check_each_verb()


async def test_agrees_with_real_custom_quests(
    custom_game: GameInfo, rich_games: dict[GameKind, GameInfo]
) -> None:
    result = await agreement([custom_game, rich_games["custom"]], "custom", episodes=10)
    assert result.walkthrough_misses == []
    assert result.walkthrough_admissible >= 5
    assert result.recall() >= 0.99 and result.precision() >= 0.98, result.pairs
    verbs = {verb for verb, _ in result.pairs}
    assert {"take", "put", "insert", "open", "close", "go", "lock", "unlock", "eat", "examine"} <= verbs
    result.check_each_verb()
