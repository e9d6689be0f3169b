"""Paired comparisons of evaluation reports."""

from __future__ import annotations

import pytest

from dreamgym_sdk.training.evaluate import EvalReport, paired_difference, wilson_interval
from dreamgym_sdk.types import Episode, Task, Transition


def _report(outcomes: dict[str, list[bool]]) -> EvalReport:
    n = sum(len(v) for v in outcomes.values())
    wins = sum(sum(v) for v in outcomes.values())
    return EvalReport(
        episodes=n, successes=wins, success_rate=wins / n, ci95=wilson_interval(wins, n),
        mean_reward=0.0, mean_steps=1.0, real_transitions=n, outcomes=outcomes,
    )  # fmt: skip


def test_same_outcomes_differ_by_nothing() -> None:
    report = _report({f"t{i}": [i % 3 == 0] for i in range(30)})
    diff = paired_difference(report, report)
    assert diff.difference == 0.0 and diff.ci95 == (0.0, 0.0) and diff.tasks == 30


def test_pairing_removes_task_difficulty() -> None:
    # Half the tasks are easy (both succeed), half hard (both fail), and A also wins 6 of the 20 hard ones:
    # unpaired, the 40-episode rates overlap; paired, the interval of A - B stays above 0.
    b = {f"t{i}": [i < 20] for i in range(40)}
    a = {f"t{i}": [i < 26] for i in range(40)}
    diff = paired_difference(_report(a), _report(b), seed=1)
    assert diff.difference == pytest.approx(6 / 40)
    assert 0.0 < diff.ci95[0] < diff.difference < diff.ci95[1]
    ra, rb = _report(a), _report(b)
    assert ra.ci95[0] < rb.ci95[1]  # the unpaired Wilson intervals overlap


def test_runs_pool_their_tasks_and_only_shared_tasks_count() -> None:
    a1, b1 = _report({"x": [True, True], "y": [False]}), _report({"x": [True, False], "z": [True]})
    a2, b2 = _report({"x": [False]}), _report({"x": [False]})
    diff = paired_difference([a1, a2], [b1, b2])
    assert diff.tasks == 2 and diff.difference == pytest.approx((0.5 + 0.0) / 2)


def test_unpaired_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="pair them run by run"):
        paired_difference([_report({"x": [True]})], [])
    with pytest.raises(ValueError, match="no task"):
        paired_difference(_report({"x": [True]}), _report({"y": [True]}))


def test_reports_record_outcomes_per_task() -> None:
    task = Task(id="a", instruction="win")

    def episode(success: bool) -> Episode:
        step = Transition(
            task_id="a", episode_id="e", step=0, state="s", action="go", next_state="t",
            reward=float(success), terminated=True, success=success,
        )  # fmt: skip
        return Episode(task=task, initial_state="s", transitions=(step,))

    assert EvalReport.of([episode(True), episode(False)]).outcomes == {"a": [True, False]}
