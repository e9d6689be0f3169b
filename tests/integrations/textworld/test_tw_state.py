"""The abstract-state mapper and its text format (pure: no TextWorld needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dreamgym_sdk.experience.mappers import StateMapper
from dreamgym_sdk.integrations.textworld import AbstractState, Entity, Exit, Fact, TextWorldStateMapper
from dreamgym_sdk.integrations.textworld._text import clean_feedback


def fact(text: str) -> Fact:
    """``"on(knife: o, table: s)"`` → a Fact with argument types."""
    predicate, _, rest = text.partition("(")
    pairs = [part.strip().split(": ") for part in rest.rstrip(")").split(",")]
    return Fact(predicate, tuple(name for name, _ in pairs), tuple(kind for _, kind in pairs))


KITCHEN = [
    fact(f)
    for f in (
        "at(P: P, kitchen: r)",
        "at(fridge: c, kitchen: r)",
        "at(table: s, kitchen: r)",
        "at(box: c, kitchen: r)",
        "at(sofa: s, livingroom: r)",
        "at(apple: f, kitchen: r)",
        "open(fridge: c)",
        "closed(box: c)",
        "in(milk: f, fridge: c)",
        "in(key: k, box: c)",
        "on(knife: o, table: s)",
        "on(pen: o, sofa: s)",
        "in(carrot: f, I: I)",
        "uncut(carrot: f)",
        "raw(carrot: f)",
        "sliced(milk: f)",
        "edible(apple: f)",
        "north_of(pantry: r, kitchen: r)",
        "south_of(corridor: r, kitchen: r)",
        "east_of(kitchen: r, garden: r)",
        "link(kitchen: r, plain door: d, pantry: r)",
        "link(pantry: r, plain door: d, kitchen: r)",
        "closed(plain door: d)",
        "base(carrot: f, ingredient_0: ingredient)",
        "in(ingredient_0: ingredient, RECIPE: RECIPE)",
    )
]
INFOS = {"facts": KITCHEN, "score": 1, "max_score": 3}


def test_maps_facts_to_what_the_player_perceives() -> None:
    state = TextWorldStateMapper().state(INFOS, feedback="You take the carrot.\n\n>  -= Kitchen =-1/3")
    assert state.location == "kitchen"
    assert state.exits == (
        Exit(direction="north", door="plain door", door_states=("closed",)),
        Exit(direction="south"),
    )
    assert state.objects == (
        Entity(name="apple"),
        Entity(name="box", states=("closed",)),  # closed: the key inside stays hidden
        Entity(
            name="fridge",
            states=("open",),
            relation="in",
            contents=(Entity(name="milk", states=("sliced",)),),
        ),
        Entity(name="table", relation="on", contents=(Entity(name="knife"),)),
    )
    assert state.inventory == (Entity(name="carrot", states=("raw", "uncut")),)
    assert (state.score, state.max_score) == (1, 3)
    assert state.feedback == "You take the carrot."
    assert state.render() == (
        "location: kitchen\n"
        "exits: north (plain door: closed), south\n"
        "objects: apple, box (closed), fridge (open) [in: milk (sliced)], table [on: knife]\n"
        "inventory: carrot (raw, uncut)\n"
        "score: 1/3\n"
        "feedback: You take the carrot."
    )


def test_the_same_world_renders_the_same_text_whatever_the_fact_order() -> None:
    mapper = TextWorldStateMapper()
    assert mapper.render({**INFOS, "facts": list(reversed(KITCHEN))}) == mapper.render(INFOS)


def test_options() -> None:
    state = TextWorldStateMapper(show_destinations=True, states=("uncut",), include_feedback=False).state(
        INFOS, feedback="ignored"
    )
    assert [e.destination for e in state.exits or ()] == ["pantry", "corridor"]
    assert state.inventory == (Entity(name="carrot", states=("uncut",)),)
    assert state.feedback is None
    short = TextWorldStateMapper(max_feedback_chars=10).state(INFOS, feedback="a" * 50)
    assert short.feedback == "a" * 10 + "..."


def test_room_descriptions_shrink_to_their_title_but_scores_stay() -> None:
    feedback = (
        "-= Study =-\nYou're now in a study.\n\nYou see a box.\n\nYour score has just gone up by one point."
    )
    assert TextWorldStateMapper().state(INFOS, feedback=feedback).feedback == (
        "-= Study =- Your score has just gone up by one point."
    )
    kept = TextWorldStateMapper(room_descriptions=True).state(INFOS, feedback=feedback).feedback
    assert kept is not None and "You see a box." in kept


def test_falls_back_to_prose_without_facts() -> None:
    infos = {
        "description": "-= Kitchen =-\nA tidy kitchen.",
        "inventory": "You are carrying: a knife and an apple.",
    }
    state = TextWorldStateMapper().state(infos)
    assert state.location == "kitchen" and state.description == "A tidy kitchen."
    assert state.inventory == (Entity(name="apple"), Entity(name="knife"))
    assert state.objects is None and state.exits is None
    empty = TextWorldStateMapper().state({"inventory": "You are carrying nothing."})
    assert empty.inventory == ()


def test_is_a_state_mapper_for_bare_text() -> None:
    mapper = TextWorldStateMapper()
    assert isinstance(mapper, StateMapper)
    assert mapper.map("-= Pantry =-\nIt is dark.") == "location: pantry\ndescription: It is dark."


def test_clean_feedback_drops_banner_prompt_and_restart_question() -> None:
    raw = (
        "\n\n  ________  ________\n |        \\|        \\\n  \\$$$$$$$$| $$$$$$$$\n\n"
        "Welcome!\n\n-= Kitchen =-\nA room.\n\n\n\n>        -= Kitchen =-0/1"
        "\n\nWould you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command?\n> "
    )
    assert clean_feedback(raw) == "Welcome!\n\n-= Kitchen =-\nA room."
    assert clean_feedback(None) == ""


NAMES = st.text(alphabet="abcdefghij -'", min_size=1, max_size=12).map(str.strip).filter(bool)
STATES = st.lists(st.sampled_from(["open", "closed", "raw", "sliced"]), max_size=2, unique=True).map(tuple)
LEAVES = st.builds(Entity, name=NAMES, states=STATES)
ENTITIES = st.one_of(
    LEAVES,
    st.builds(
        Entity,
        name=NAMES,
        states=STATES,
        relation=st.sampled_from(["on", "in"]),
        contents=st.lists(LEAVES, min_size=1, max_size=3).map(tuple),
    ),
)
EXITS = st.builds(
    Exit,
    direction=st.sampled_from(["north", "south", "east", "west"]),
    door=st.none() | NAMES,
    door_states=STATES,
    destination=st.none() | NAMES,
).filter(lambda e: e.door is not None or not e.door_states)
STATES_TEXT = st.builds(
    AbstractState,
    location=st.none() | NAMES,
    exits=st.none() | st.lists(EXITS, max_size=3).map(tuple),
    objects=st.none() | st.lists(ENTITIES, max_size=4).map(tuple),
    inventory=st.none() | st.lists(LEAVES, max_size=3).map(tuple),
    score=st.none() | st.integers(0, 9).map(float),
    max_score=st.none() | st.integers(1, 9).map(float),
    feedback=st.none() | st.text(alphabet="abc .!:", min_size=1, max_size=30).map(str.strip).filter(bool),
)


@given(STATES_TEXT)
def test_render_and_parse_round_trip(state: AbstractState) -> None:
    if state.score is None:
        state = state.model_copy(update={"max_score": None})
    assert AbstractState.parse(state.render()) == state
