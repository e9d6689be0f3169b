"""A rule-based annotator for TextWorld: reasoning traces read off the environment's ground truth.

Where the paper asks a teacher LLM why a_t in s_t leads to s_{t+1}, r_{t+1}, TextWorld can say it
exactly: the facts of the world before and after the step, the commands it admitted, the score and
whether the game was won or lost (:class:`~dreamgym_sdk.distill.StepGroundTruth`).
:class:`RuleBasedAnnotator` turns them into a short, faithful trace in the order the experience model
should think: is the action possible here; what changes in the world (and what it reveals); how the
score and so the reward change; is the episode over. For example::

    'open fridge' is admissible here. The fridge was closed and becomes open, revealing a red apple and a
    yellow potato. The score stays at 0 of 3, so the reward is 0. The objective is not complete yet: the
    episode goes on.

In cooking games a step's score depends on the hidden recipe, so a step that handles food first says
whether the recipe needs it ("The recipe needs the red apple." / "The recipe does not need the yellow
potato."; for ``prepare meal``, which ingredients are still missing): the decision the reward follows,
made explicit where the experience model has to guess it from the state.

Without ground truth it falls back to comparing the recorded state and next state line by line, so every
transition still gets a trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from dreamgym_sdk.distill.annotate import Annotation, AnnotationRequest
from dreamgym_sdk.distill.ground_truth import StepGroundTruth
from dreamgym_sdk.experience.parsing import RewardMode
from dreamgym_sdk.types import Transition

__all__ = ["RULES_VERSION", "RuleBasedAnnotator", "explain_step"]

RULES_VERSION = "tw-rules-v3"
"""Version of the rules' wording; recorded in every annotation."""

_FACT = re.compile(r"^\s*([^()]+?)\s*\((.*)\)\s*$")
_CONTAINER_STATES = ("open", "closed", "locked")
_FOOD_STATES = (
    "raw", "fried", "roasted", "grilled", "burned", "sliced", "chopped", "diced", "uncut", "cooked",
    "edible", "inedible", "consumed", "used",
)  # fmt: skip
_FOOD_KINDS = frozenset({"cookable", "edible", "cuttable"})
_SKIP_BINARY = frozenset({"base", "cooking_location", "out", "part_of"})


def _parse(fact: str) -> tuple[str, tuple[str, ...]] | None:
    match = _FACT.match(fact)
    if match is None:
        return None
    args = tuple(a.strip() for a in match.group(2).split(",")) if match.group(2).strip() else ()
    return match.group(1), args


def _facts(facts: Iterable[str]) -> set[tuple[str, tuple[str, ...]]]:
    return {p for p in (_parse(f) for f in facts) if p is not None}


def _where(pred: str, holder: str) -> str:
    if holder == "I":
        return "the inventory"
    if pred == "on":
        return f"the {holder}"
    if pred == "at":
        return f"the floor of the {holder}"
    return f"the {holder}"


def _names(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _placement(facts: set[tuple[str, tuple[str, ...]]]) -> dict[str, tuple[str, str]]:
    """Object → (relation, holder) for the located objects (the player excluded)."""
    placed: dict[str, tuple[str, str]] = {}
    for pred, args in facts:
        if pred in ("at", "in", "on") and len(args) == 2 and args[0] != "P":
            placed[args[0]] = (pred, args[1])
    return placed


def _world_changes(truth: StepGroundTruth) -> list[str]:
    """Sentences describing how the facts changed."""
    before, after = _facts(truth.facts_before), _facts(truth.facts_after)
    added, removed = after - before, before - after
    sentences: list[str] = []
    here_before = next((a[1] for p, a in before if p == "at" and len(a) == 2 and a[0] == "P"), None)
    here_after = next((a[1] for p, a in after if p == "at" and len(a) == 2 and a[0] == "P"), None)
    if here_before != here_after and here_after is not None:
        sentences.append(f"The player moves from the {here_before or 'unknown place'} to the {here_after}.")

    unary_before: dict[str, set[str]] = {}
    unary_after: dict[str, set[str]] = {}
    for pred, args in before:
        if len(args) == 1:
            unary_before.setdefault(args[0], set()).add(pred)
    for pred, args in after:
        if len(args) == 1:
            unary_after.setdefault(args[0], set()).add(pred)

    placed_before, placed_after = _placement(before), _placement(after)
    appeared: list[str] = []
    for obj in sorted(set(placed_before) | set(placed_after)):
        old, new = placed_before.get(obj), placed_after.get(obj)
        if old == new:
            continue
        if old is None and new is not None:
            appeared.append(obj)
            sentences.append(f"A {obj} appears in {_where(*new)}.")
        elif new is None and old is not None:
            if "consumed" in unary_after.get(obj, set()):
                sentences.append(f"The {obj} is eaten and leaves {_where(*old)}.")
            elif "used" in unary_after.get(obj, set()):
                sentences.append(f"The {obj} is used up and leaves {_where(*old)}.")
            else:
                sentences.append(f"The {obj} leaves {_where(*old)}.")
        elif old is not None and new is not None:
            sentences.append(f"The {obj} moves from {_where(*old)} to {_where(*new)}.")

    for obj in sorted(set(unary_before) | set(unary_after)):
        old_states, new_states = unary_before.get(obj, set()), unary_after.get(obj, set())
        gone = [s for s in (*_CONTAINER_STATES, *_FOOD_STATES) if s in old_states - new_states]
        came = [s for s in (*_CONTAINER_STATES, *_FOOD_STATES) if s in new_states - old_states]
        came = [s for s in came if s not in ("consumed", "used")]  # told with the object leaving
        if obj in appeared or not came:
            continue
        was = f" was {_names(gone)} and" if gone else ""
        sentence = f"The {obj}{was} becomes {_names(came)}"
        if "open" in came:
            inside = sorted(a[0] for p, a in after if p == "in" and len(a) == 2 and a[1] == obj)
            sentence += f", revealing {_names(inside)}" if inside else ", which is empty"
        sentences.append(sentence + ".")

    other = sorted(
        (p, a)
        for p, a in added | removed
        if len(a) == 2 and p not in ("at", "in", "on", *_SKIP_BINARY) and "P" not in a
    )
    for pred, args in other:
        status = "now holds" if (pred, args) in added else "no longer holds"
        sentences.append(f"{pred}({', '.join(args)}) {status}.")
    return sentences


def _recipe(facts: Iterable[str]) -> list[str]:
    """The recipe's ingredients: ``base(orange bell pepper, ingredient_0)`` facts of a cooking game."""
    return sorted(a[0] for p, a in _facts(facts) if p == "base" and len(a) == 2)


def _held(facts: Iterable[str]) -> set[str]:
    return {obj for obj, (_, holder) in _placement(_facts(facts)).items() if holder == "I"}


def _recipe_sentence(action: str, truth: StepGroundTruth) -> str | None:
    """Whether the recipe needs the food the action handles (``None`` outside cooking games or food)."""
    recipe = _recipe(truth.facts_before)
    if not recipe:
        return None
    if action == "prepare meal":
        missing = [i for i in recipe if i not in _held(truth.facts_before)]
        if missing:
            return f"The recipe needs the {_names(missing)}, which the inventory lacks."
        return f"The recipe needs the {_names(recipe)}, all in the inventory."
    verb, _, rest = action.partition(" ")
    if verb not in ("take", "eat", "cook", "slice", "chop", "dice", "drop", "insert", "put"):
        return None
    food = {a[0] for p, a in _facts(truth.facts_before) if len(a) == 1 and p in _FOOD_KINDS}
    obj = re.split(r" (?:from|with|into|on) ", rest, maxsplit=1)[0]
    if obj == "meal":
        return None
    if obj in recipe:
        return f"The recipe needs the {obj}."
    if obj in food:
        return f"The recipe does not need the {obj}."
    return None


def _reward_sentence(truth: StepGroundTruth, reward: float, reward_mode: RewardMode) -> str:
    total = _number(truth.max_score)
    if truth.score_after == truth.score_before:
        return (
            f"The score stays at {_number(truth.score_after)} of {total}, so the reward is {_number(reward)}."
        )
    change = "rises" if truth.score_after > truth.score_before else "falls"
    told = f"The score {change} from {_number(truth.score_before)} to {_number(truth.score_after)} of {total}"
    if reward_mode == "outcome" and not truth.won:
        return f"{told}, but rewards are outcome-only, so the reward is {_number(reward)}."
    return f"{told}, so the reward is {_number(reward)}."


def _ending_sentence(won: bool, lost: bool) -> str:
    if won:
        return "This accomplishes the objective: the game is won, so done and success are true."
    if lost:
        return "The game is lost, so done is true and success is false."
    return "The objective is not complete yet: the episode goes on."


def explain_step(transition: Transition, truth: StepGroundTruth, *, reward_mode: RewardMode = "dense") -> str:
    """The trace of one TextWorld step from its ground truth (see the module docstring).

    Args:
        transition: the recorded step (its action and reward are quoted).
        truth: the environment's account of the step.
        reward_mode: how the training target states the reward: ``"dense"`` (the score change) or
            ``"outcome"`` (1 only on the winning step).
    """
    action = " ".join(transition.action.split())
    reward = transition.reward if reward_mode == "dense" else float(transition.success)
    feedback = " ".join(truth.feedback.split())
    changes = _world_changes(truth)
    parts: list[str] = []
    recipe = _recipe_sentence(action, truth)
    if truth.action_admissible:
        parts.append(f"'{action}' is admissible here.")
        if recipe:
            parts.append(recipe)
        if changes:
            parts.extend(changes)
        else:
            parts.append("It only observes: nothing in the world changes, and the game answers with text.")
    else:
        parts.append(f"'{action}' is not an admissible command in this state.")
        if recipe:
            parts.append(recipe)
        if changes:
            parts.append("The game still carries it out.")
            parts.extend(changes)
        else:
            quoted = f' (the game answers "{feedback}")' if feedback and len(feedback) <= 120 else ""
            parts.append(f"Nothing changes{quoted}: the state stays as it was.")
    parts.append(_reward_sentence(truth, reward, reward_mode))
    parts.append(_ending_sentence(truth.won, truth.lost))
    return " ".join(parts)


def explain_from_states(transition: Transition, *, reward_mode: RewardMode = "dense") -> str:
    """A trace from the recorded states alone (no ground truth): the lines that change, the reward and
    the ending."""
    before = _lines(transition.state)
    after = _lines(transition.next_state)
    action = " ".join(transition.action.split())
    parts = [f"The action is '{action}'."]
    changed = [
        f"{key} changes from '{before[key]}' to '{after[key]}'"
        for key in after
        if key in before and before[key] != after[key] and key != "feedback"
    ]
    changed += [f"{key} appears: '{after[key]}'" for key in after if key not in before and key != "feedback"]
    if changed:
        parts.append("In the state, " + "; ".join(changed) + ".")
    else:
        parts.append("Nothing in the state changes apart from the game's answer.")
    reward = transition.reward if reward_mode == "dense" else float(transition.success)
    parts.append(f"The reward is {_number(reward)}.")
    parts.append(_ending_sentence(transition.success, transition.terminated and not transition.success))
    return " ".join(parts)


def _lines(state: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in state.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found[key.strip()] = value.strip()
    return found


class RuleBasedAnnotator:
    """Writes TextWorld reasoning traces from the environment's ground truth (see the module docstring).

    ```python
    truth = await replay_ground_truth(transitions, "tw_games")
    data = await annotate_transitions(transitions, RuleBasedAnnotator(), ground_truth=truth.steps)
    ```

    Args:
        reward_mode: how traces state the reward; must match the dataset's reward mode (``"dense"``: the
            score change, as TextWorld reports it; ``"outcome"``: 1 only on the winning step).
    """

    name = "rules/textworld"

    def __init__(self, *, reward_mode: RewardMode = "dense") -> None:
        self.reward_mode: RewardMode = reward_mode
        self.prompt_version = f"{RULES_VERSION}/{reward_mode}"
        """Recorded in every annotation."""

    async def annotate(self, request: AnnotationRequest) -> Annotation:
        """The trace of ``request.transition``: from its ground truth, else from its states."""
        t, truth = request.transition, request.ground_truth
        if truth is not None:
            reasoning = explain_step(t, truth, reward_mode=self.reward_mode)
            version = self.prompt_version
        else:
            reasoning = explain_from_states(t, reward_mode=self.reward_mode)
            version = f"{self.prompt_version}/states-only"
        return Annotation(
            transition_id=t.id,
            reasoning=reasoning,
            annotator=self.name,
            prompt_version=version,
            action_admissible=None if truth is None else truth.action_admissible,
        )
