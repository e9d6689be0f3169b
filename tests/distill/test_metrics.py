"""Fidelity metrics on hand-built predictions."""

from __future__ import annotations

import pytest

from dreamgym_sdk.distill import Reference, exact_match, score_predictions, state_kept, token_f1
from dreamgym_sdk.experience.base import ExperienceOutput
from dreamgym_sdk.types import Source, Transition

STATE = "location: kitchen\ninventory: nothing\nscore: 0/3"


def _ref(
    action: str, next_state: str, *, reward: float = 0.0, done: bool = False, admissible: bool | None = True
) -> Reference:
    t = Transition(
        task_id="t", episode_id="e", step=0, state=STATE, action=action, next_state=next_state, reward=reward,
        terminated=done, success=done and reward > 0, source=Source.REAL,
    )  # fmt: skip
    return Reference(t, admissible)


def _out(next_state: str, reward: float = 0.0, done: bool = False, success: bool = False) -> ExperienceOutput:
    return ExperienceOutput(reasoning="r", next_state=next_state, reward=reward, done=done, success=success)


def test_token_f1_by_hand() -> None:
    assert token_f1("a b c", "a b c") == 1.0
    assert token_f1("", "") == 1.0
    assert token_f1("a b", "c d") == 0.0
    assert token_f1("", "a") == 0.0
    # pred "the red apple" (3 tokens), ref "the apple" (2): 2 in common -> P 2/3, R 1 -> F1 0.8
    assert token_f1("the red apple", "the apple") == pytest.approx(0.8)
    # Case and punctuation: "Apple," -> ["apple", ","]; multiplicity counts.
    assert token_f1("Apple, apple", "apple apple") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_exact_match_and_state_kept() -> None:
    assert exact_match("  a: 1\n\nb: 2 ", "a: 1\nb: 2")
    assert not exact_match("a: 1", "a: 2")
    assert state_kept(STATE, STATE + "\nfeedback: You can't.")
    assert not state_kept(STATE, STATE.replace("nothing", "apple"))
    assert not state_kept(STATE, STATE + "\nfeedback: x", volatile=())


def test_score_predictions_by_hand() -> None:
    refs = [
        _ref("open fridge", STATE + "\nfeedback: opened"),
        _ref("take apple", STATE.replace("nothing", "apple") + "\nfeedback: taken", reward=1.0),
        _ref("eat meal", STATE + "\nfeedback: won", reward=1.0, done=True),
        _ref("eat lamp", STATE + "\nfeedback: You can't see any such thing.", admissible=False),
        _ref("fly", STATE + "\nfeedback: what?", admissible=False),
    ]
    preds = [
        _out(STATE + "\nfeedback: opened"),  # all right, exact
        _out(STATE + "\nfeedback: taken"),  # reward wrong (0 for 1), inventory missed
        _out(STATE + "\nfeedback: won", reward=1.0, done=True, success=True),  # all right
        _out(STATE + "\nfeedback: no lamp here"),  # invalid: state kept, reward 0
        None,  # no usable answer: wrong everywhere
    ]
    metrics, scored = score_predictions(refs, preds)
    assert metrics.n == 5 and metrics.answered == 4
    assert metrics.reward_accuracy == pytest.approx(3 / 5)
    assert metrics.done_accuracy == pytest.approx(4 / 5)
    assert metrics.success_accuracy == pytest.approx(4 / 5)
    assert metrics.next_state_exact == pytest.approx(2 / 5)
    expected_f1 = (
        1
        + token_f1(preds[1].next_state, refs[1].transition.next_state)
        + 1  # type: ignore[union-attr]
        + token_f1(preds[3].next_state, refs[3].transition.next_state)
        + 0
    ) / 5  # type: ignore[union-attr]
    assert metrics.next_state_f1 == pytest.approx(expected_f1)
    assert metrics.positives.reward == 2 and metrics.positives.reward_recall == pytest.approx(0.5)
    assert metrics.positives.done == 1 and metrics.positives.done_recall == 1.0
    invalid = metrics.invalid_actions
    assert invalid.count == 2
    assert invalid.reward_zero == pytest.approx(0.5) and invalid.state_kept == pytest.approx(0.5)
    assert invalid.not_done == pytest.approx(0.5) and invalid.reference_state_kept == 1.0
    assert [s.answered for s in scored] == [True, True, True, True, False]


def test_outcome_mode_reads_reference_rewards_as_outcomes() -> None:
    refs = [_ref("take apple", STATE, reward=1.0), _ref("eat meal", STATE, reward=1.0, done=True)]
    preds = [_out(STATE, reward=0.0), _out(STATE, reward=1.0, done=True, success=True)]
    metrics, _ = score_predictions(refs, preds, reward_mode="outcome")
    assert metrics.reward_accuracy == 1.0  # the score rise before the end is worth 0
    dense, _ = score_predictions(refs, preds, reward_mode="dense")
    assert dense.reward_accuracy == 0.5


def test_unknown_admissibility_is_not_counted_as_invalid() -> None:
    metrics, scored = score_predictions([_ref("x", STATE, admissible=None)], [_out(STATE)])
    assert metrics.invalid_actions.count == 0 and metrics.invalid_actions.reward_zero is None
    assert scored[0].invalid_action is None


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="1 references but 0 predictions"):
        score_predictions([_ref("x", STATE)], [])
