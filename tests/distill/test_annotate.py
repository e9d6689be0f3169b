"""Reasoning annotation: ground truth by replay, the rule-based annotator, the LLM annotator, storage."""

from __future__ import annotations

import json
from pathlib import Path

from distill_helpers import SCRIPT, TWData, needs_textworld

from dreamgym_sdk.distill import (
    AnnotatedData,
    Annotation,
    AnnotationRequest,
    LLMAnnotator,
    StepGroundTruth,
    annotate_transitions,
    annotations_path,
    read_annotated,
    read_tasks,
    write_annotated,
    write_tasks,
)
from dreamgym_sdk.integrations.textworld import (
    RULES_VERSION,
    RuleBasedAnnotator,
    explain_step,
    replay_ground_truth,
)
from dreamgym_sdk.providers.base import ChatRequest
from dreamgym_sdk.testing import FunctionProvider, ScriptedProvider
from dreamgym_sdk.types import Source, Task, Transition


def _transition(action: str = "open fridge", **update: object) -> Transition:
    base = Transition(
        task_id="t", episode_id="e", step=0, state="s", action=action, next_state="s2", reward=0.0,
        source=Source.REAL,
    )  # fmt: skip
    return base.model_copy(update=update)


# -- rule-based traces from hand-built ground truth --------------------------------------------------------


def test_opening_a_container_names_what_it_reveals() -> None:
    truth = StepGroundTruth(
        transition_id="x",
        action_admissible=True,
        facts_before=("at(P, kitchen)", "closed(fridge)", "in(red apple, fridge)", "in(carrot, fridge)"),
        facts_after=("at(P, kitchen)", "open(fridge)", "in(red apple, fridge)", "in(carrot, fridge)"),
        score_before=0,
        score_after=0,
        max_score=3,
    )
    assert explain_step(_transition("open fridge"), truth) == (
        "'open fridge' is admissible here. The fridge was closed and becomes open, revealing carrot and "
        "red apple. The score stays at 0 of 3, so the reward is 0. The objective is not complete yet: the "
        "episode goes on."
    )


def test_winning_step_and_outcome_rewards() -> None:
    truth = StepGroundTruth(
        transition_id="x", action_admissible=True,
        facts_before=("in(meal, I)", "edible(meal)"), facts_after=("consumed(meal)",),
        score_before=2, score_after=3, max_score=3, won=True,
    )  # fmt: skip
    step = _transition("eat meal", reward=1.0, terminated=True, success=True)
    dense = explain_step(step, truth)
    assert "The meal is eaten and leaves the inventory." in dense
    assert "The score rises from 2 to 3 of 3, so the reward is 1." in dense
    assert dense.endswith("the game is won, so done and success are true.")
    # Outcome rewards: a score rise before the end is worth 0.
    earlier = truth.model_copy(update={"won": False, "score_before": 0, "score_after": 1})
    text = explain_step(_transition("take carrot", reward=1.0), earlier, reward_mode="outcome")
    assert "but rewards are outcome-only, so the reward is 0" in text


def test_refused_action_keeps_the_state() -> None:
    truth = StepGroundTruth(
        transition_id="x", action_admissible=False, facts_before=("at(P, kitchen)",),
        facts_after=("at(P, kitchen)",), score_before=1, score_after=1, max_score=3,
        feedback="You can't see any such thing.",
    )  # fmt: skip
    text = explain_step(_transition("eat lamp"), truth)
    assert text.startswith("'eat lamp' is not an admissible command in this state. Nothing changes")
    assert "the reward is 0" in text and "the episode goes on" in text


def test_food_steps_say_whether_the_recipe_needs_it() -> None:
    # The score of a cooking game follows the hidden recipe: the trace names the decision the reward follows.
    facts = (
        "base(red apple, ingredient_0)", "cuttable(red apple)", "cookable(carrot)",
        "in(red apple, fridge)", "in(carrot, fridge)", "at(P, kitchen)",
    )  # fmt: skip
    truth = StepGroundTruth(
        transition_id="x", action_admissible=True, facts_before=facts, facts_after=facts,
        score_before=0, score_after=0, max_score=3,
    )  # fmt: skip
    take = explain_step(_transition("take carrot from fridge"), truth)
    assert "The recipe does not need the carrot. " in take
    assert "The recipe needs the red apple. " in explain_step(_transition("eat red apple"), truth)
    refused = truth.model_copy(update={"action_admissible": False})
    assert explain_step(_transition("prepare meal"), refused).startswith(
        "'prepare meal' is not an admissible command in this state. The recipe needs the red apple, which "
        "the inventory lacks. Nothing changes"
    )
    assert "recipe" not in explain_step(_transition("open fridge"), truth)


async def test_without_ground_truth_the_trace_comes_from_the_states() -> None:
    t = _transition(
        "take apple",
        state="location: kitchen\ninventory: nothing\nscore: 0/1",
        next_state="location: kitchen\ninventory: apple\nscore: 1/1\nfeedback: Taken.",
        reward=1.0, terminated=True, success=True,
    )  # fmt: skip
    annotation = await RuleBasedAnnotator().annotate(AnnotationRequest(t))
    assert "inventory changes from 'nothing' to 'apple'" in annotation.reasoning
    assert "The reward is 1." in annotation.reasoning
    assert annotation.prompt_version.endswith("/states-only") and annotation.action_admissible is None


# -- real TextWorld episodes ----------------------------------------------------------------------------


@needs_textworld
def test_replay_recovers_the_ground_truth_of_every_step(tw_data: TWData) -> None:
    report = tw_data.truth
    assert report.skipped == {}
    assert set(report.steps) == {t.id for t in tw_data.transitions}
    by_action = {t.action: report.steps[t.id] for t in tw_data.scripted}
    assert [t.action for t in tw_data.scripted] == list(SCRIPT)
    assert by_action["eat lamp"].action_admissible is False
    assert by_action["close fridge"].action_admissible is True
    assert "open(fridge)" in by_action["close fridge"].facts_before
    assert "closed(fridge)" in by_action["close fridge"].facts_after
    assert by_action["eat meal"].won and by_action["eat meal"].score_after == 3


@needs_textworld
async def test_rule_based_traces_are_faithful_on_a_scripted_episode(tw_data: TWData) -> None:
    data = await annotate_transitions(
        tw_data.transitions, RuleBasedAnnotator(), ground_truth=tw_data.truth.steps
    )
    assert data.failed == 0
    assert all(t.reasoning for t in data.transitions)  # a trace for every transition
    assert {a.annotator for a in data.annotations} == {"rules/textworld"}
    assert {a.prompt_version for a in data.annotations} == {f"{RULES_VERSION}/dense"}
    trace = {t.action: t.reasoning for t in data.transitions[: len(SCRIPT)]}
    assert trace["close fridge"].startswith(
        "'close fridge' is admissible here. The fridge was open and becomes closed."
    )
    assert "The fridge was closed and becomes open, revealing orange bell pepper" in trace["open fridge"]
    assert "not an admissible command" in trace["eat lamp"] and "the reward is 0" in trace["eat lamp"]
    take = trace["take orange bell pepper from fridge"]
    assert "The orange bell pepper moves from the fridge to the inventory." in take
    assert "The score rises from 0 to 1 of 3, so the reward is 1." in take
    assert "A meal appears in the inventory." in trace["prepare meal"]
    assert trace["eat meal"].endswith("the game is won, so done and success are true.")
    # The traces state the recorded rewards.
    for t in data.transitions:
        assert f"the reward is {int(t.reward)}." in t.reasoning


@needs_textworld
async def test_replay_skips_episodes_it_cannot_reproduce(tw_data: TWData) -> None:
    first = tw_data.scripted[0]
    wrong_game = [t.model_copy(update={"task_id": "unknown"}) for t in tw_data.scripted]
    gap = [t for t in tw_data.others if t.episode_id == tw_data.others[0].episode_id][1:]
    edited = [first.model_copy(update={"next_state": "something else", "episode_id": "edited"})]
    report = await replay_ground_truth([*wrong_game, *gap, *edited], tw_data.games)
    assert report.steps == {}
    assert report.skipped[first.episode_id].startswith("no game for task")
    assert "not 0..n-1" in report.skipped[tw_data.others[0].episode_id]
    assert "did not reproduce" in report.skipped["edited"]


# -- the LLM annotator --------------------------------------------------------------------------------


async def test_llm_annotator_shows_the_outcome_and_the_ground_truth() -> None:
    seen: list[ChatRequest] = []

    def teacher(request: ChatRequest) -> str:
        seen.append(request)
        return '{"reasoning": "The fridge was closed; opening it reveals an apple."}'

    provider = FunctionProvider(teacher, model="test/teacher")
    truth = StepGroundTruth(
        transition_id="x", action_admissible=True, facts_before=("closed(fridge)",),
        facts_after=("open(fridge)",), score_before=0, score_after=0, max_score=1,
    )  # fmt: skip
    t = _transition(next_state="fridge (open) [in: apple]")
    request = AnnotationRequest(t, task=Task(id="t", instruction="eat the apple"), ground_truth=truth)
    annotation = await LLMAnnotator(provider).annotate(request)
    assert annotation.reasoning == "The fridge was closed; opening it reveals an apple."
    assert (annotation.annotator, annotation.model, annotation.prompt_version) == (
        "llm", "test/teacher", "annotate-v1",
    )  # fmt: skip
    prompt = seen[0].messages[1].content
    for expected in (
        "eat the apple",
        "open fridge",
        "fridge (open) [in: apple]",
        "Facts that became true: open(fridge)",
    ):
        assert expected in prompt
    assert seen[0].response_schema is not None


async def test_llm_annotator_retries_and_failures_are_recorded() -> None:
    provider = ScriptedProvider(["no json here", '{"reasoning": "ok"}', "", "", ""])
    data = await annotate_transitions(
        [_transition(), _transition(id="second", step=1)], LLMAnnotator(provider), concurrency=1
    )
    assert data.annotations[0].reasoning == "ok" and data.transitions[0].reasoning == "ok"
    assert data.failed == 1 and data.annotations[1].error is not None
    assert data.transitions[1].reasoning == ""  # untouched


def test_annotated_data_round_trips(tmp_path: Path) -> None:
    t = _transition(reasoning="because")
    annotation = Annotation(
        transition_id=t.id, reasoning="because", annotator="rules/textworld", prompt_version="v"
    )
    data = AnnotatedData([t], [annotation])
    path = tmp_path / "annotated.jsonl"
    sidecar = write_annotated(data, path)
    assert sidecar == annotations_path(path) == tmp_path / "annotated.annotations.jsonl"
    again = read_annotated(path)
    assert again.transitions == [t] and again.annotations == data.annotations
    assert json.loads(path.read_text().splitlines()[0])["reasoning"] == "because"
    tasks = [Task(id="a", instruction="x"), Task(id="b", instruction="y")]
    write_tasks(tasks, tmp_path / "tasks.jsonl")
    assert read_tasks(tmp_path / "tasks.jsonl") == {"a": tasks[0], "b": tasks[1]}
