"""The curriculum: variance criterion, λ cap, candidate filters, persistence, events."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from dreamgym_sdk import (
    Episode,
    Event,
    EventBus,
    Source,
    Task,
    TaskAccepted,
    TaskProposed,
    TaskRejected,
    Transition,
)
from dreamgym_sdk.curriculum import (
    Curriculum,
    CurriculumConfig,
    StartStateVariations,
    TaskPool,
    TaskStatsTracker,
    reward_variance,
)
from dreamgym_sdk.experience.tasks import TaskCandidate, TaskVariationGenerator
from dreamgym_sdk.testing import ScriptedProvider


def episode(task: Task, reward: float) -> Episode:
    t = Transition(task_id=task.id, episode_id="e", step=0, state="s", action="a", next_state="s2",
                   reward=reward, terminated=True, success=reward > 0)  # fmt: skip
    return Episode(task=task, initial_state="s", transitions=(t,))


class ListGenerator:
    """Proposes the given instructions as variations of any task."""

    def __init__(self, instructions: Sequence[str]) -> None:
        self.instructions = list(instructions)

    async def propose(self, task: Task, *, k: int) -> list[Task]:
        return [Task(instruction=i, parent_id=task.id) for i in self.instructions[:k]]


def test_reward_variance_matches_the_paper() -> None:
    assert reward_variance([1, 0, 1, 0]) == pytest.approx(0.25)
    assert reward_variance([1, 1, 1, 1]) == 0.0
    assert reward_variance([0, 0, 0, 0]) == 0.0
    assert reward_variance([1]) == 0.0
    assert reward_variance([1, 0, 0, 0]) == pytest.approx(0.1875)


def test_tracker_keeps_the_last_group() -> None:
    tracker = TaskStatsTracker(window=4)
    task = Task(id="t", instruction="x")
    for r in [1, 1, 1, 1, 0, 1, 0, 1]:
        tracker.observe(episode(task, r))
    stats = tracker.get("t")
    assert stats.rewards == (0, 1, 0, 1)
    assert stats.variance == pytest.approx(0.25)
    assert (stats.episodes, stats.successes) == (8, 6)


async def test_seeds_are_the_highest_variance_tasks_on_hand_built_groups() -> None:
    always = Task(id="always", instruction="always solved task")
    never = Task(id="never", instruction="never solved task")
    half = Task(id="half", instruction="half solved task")
    rare = Task(id="rare", instruction="rarely solved task")
    pool = TaskPool([always, never, half, rare])
    cur = Curriculum(pool, ListGenerator([]), CurriculumConfig(group_size=4, seeds_per_iteration=2))
    groups = [(always, [1, 1, 1, 1]), (never, [0, 0, 0, 0]), (half, [1, 0, 1, 0]), (rare, [0, 0, 1, 0])]
    for task, rewards in groups:
        for r in rewards:
            cur.observe(episode(task, r))
    assert [s.task_id for s in cur.seeds()] == ["half", "rare"]  # zero-variance tasks never seed


async def test_expand_filters_candidates_with_reasons_and_accepts_one_per_seed() -> None:
    parent = Task(id="p", instruction="put the red apple in the fridge")
    pool = TaskPool([parent])
    generator = ListGenerator([
        "hm",  # malformed: too short
        "put the red apple in the fridge",  # duplicate of the parent
        "put the red apple and the green pear in the fridge, then close it",
        "slice the carrot and put it in the oven",  # fine, but one per seed
    ])  # fmt: skip
    bus = EventBus()
    sub = bus.subscribe(Event)
    cur = Curriculum(pool, generator, CurriculumConfig(group_size=2), bus=bus)
    for r in (1.0, 0.0):
        cur.observe(episode(parent, r))
    decisions = await cur.expand()
    reasons = [d.reason for d in decisions]
    assert reasons[0].startswith("malformed")
    assert reasons[1].startswith("duplicate")
    assert reasons[2] == "accepted"
    assert reasons[3] == "not selected: another variation of the same seed was accepted"
    assert len(pool) == 2 and pool.synthetic_tasks[0].parent_id == "p"
    assert await cur.expand() == []  # a seed is expanded once
    bus.close()
    kinds = [type(e) async for e in sub]
    assert kinds == [TaskProposed, TaskRejected, TaskProposed, TaskRejected, TaskProposed, TaskAccepted,
                     TaskProposed, TaskRejected]  # fmt: skip


async def test_infeasible_candidates_are_rejected() -> None:
    parent = Task(id="p", instruction="cook the meal in the kitchen")
    infeasible = TaskCandidate(
        instruction="fly to the moon and cook there", feasible=False, feasibility_check="no moon in this game"
    )
    generator = TaskVariationGenerator(
        ScriptedProvider([json.dumps({"candidates": [infeasible.model_dump()]})])
    )
    cur = Curriculum(TaskPool([parent]), generator, CurriculumConfig(group_size=2, candidates_per_seed=1))
    for r in (1.0, 0.0):
        cur.observe(episode(parent, r))
    (decision,) = await cur.expand()
    assert not decision.accepted and decision.reason == "infeasible: no moon in this game"

    custom = Curriculum(
        TaskPool([parent]),
        ListGenerator(["grill the unicorn steak"]),
        CurriculumConfig(group_size=2),
        feasibility=lambda t: "unknown object: unicorn" if "unicorn" in t.instruction else None,
    )
    for r in (1.0, 0.0):
        custom.observe(episode(parent, r))
    (decision,) = await custom.expand()
    assert decision.reason == "infeasible: unknown object: unicorn"


def test_sampling_caps_the_synthetic_share() -> None:
    seeds = [Task(id=f"s{i}", instruction=f"seed {i}") for i in range(10)]
    synthetic = [Task(id=f"g{i}", instruction=f"generated {i}", parent_id="s0") for i in range(30)]
    pool = TaskPool(seeds + synthetic)
    rng = random.Random(0)
    for share, n in [(0.25, 16), (0.5, 10), (0.0, 8), (1.0, 12)]:
        batch = pool.sample(n, synthetic_share=share, rng=rng)
        assert len(batch) == n
        assert sum(t.parent_id is not None for t in batch) <= int(share * n)
    only_seeds = TaskPool(seeds)
    assert len(only_seeds.sample(25, synthetic_share=0.5, rng=rng)) == 25  # with replacement past the pool
    with pytest.raises(ValueError, match="no seed tasks"):
        TaskPool(synthetic).sample(4, synthetic_share=0.5, rng=rng)


def test_pool_persists_and_reloads(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "run" / "tasks.jsonl"
    a, b = Task(id="a", instruction="first task"), Task(id="b", instruction="second task", parent_id="a")
    pool = TaskPool([a], path=path)
    assert pool.add(b, a) == [b]
    again = TaskPool([a], path=path)
    assert [t.id for t in again.tasks] == ["a", "b"]
    assert again["b"] == b
    assert len(path.read_text().splitlines()) == 2


async def test_a_failed_generation_is_counted_and_does_not_stop_expansion() -> None:
    a, b = Task(id="a", instruction="open the red door"), Task(id="b", instruction="open the blue door")
    answers = ["not json at all", "still not json", "nope",  # a: every retry fails
               json.dumps({"candidates": [{"instruction": "open the green door twice"}]})]  # fmt: skip
    cur = Curriculum(
        TaskPool([a, b]),
        TaskVariationGenerator(ScriptedProvider(answers)),
        CurriculumConfig(group_size=2, seeds_per_iteration=2),
    )
    for task in (a, b):
        for r in (1.0, 0.0):
            cur.observe(episode(task, r))
    decisions = await cur.expand()
    assert cur.generation_failures == 1
    assert [d.reason for d in decisions] == ["accepted"]


def _real_episode(task: Task, episode: str, states: Sequence[str], success: bool) -> list[Transition]:
    last = len(states) - 2
    return [
        Transition(task_id=task.id, episode_id=episode, step=i, state=states[i], action=f"a{i}",
                   next_state=states[i + 1], reward=0.0, terminated=i == last, success=success and i == last,
                   source=Source.REAL)
        for i in range(len(states) - 1)
    ]  # fmt: skip


async def test_start_state_variations_start_a_task_where_its_real_episodes_went() -> None:
    game = Task(id="game", instruction="cook a meal", environment="textworld", initial_state="s0")
    other = Task(id="other", instruction="cook a meal", environment="textworld", initial_state="o0")
    data = [
        *_real_episode(game, "won", ["s0", "s1", "s2", "s3"], success=True),
        *_real_episode(game, "lost", ["s0", "s1", "x2", " x3 ", "x4"], success=False),
        *_real_episode(other, "o", ["o0", "o1", "o2"], success=False),
        Transition(task_id="game", episode_id="dream", step=0, state="s0", action="a", next_state="d1",
                   reward=0.0, source=Source.SYNTHETIC),
    ]  # fmt: skip
    generator = StartStateVariations(data)
    proposed = await generator.propose(game, k=10)
    # non-terminal steps only; the failed episode's states first, latest first; s1 once; no synthetic state
    assert [t.initial_state for t in proposed] == [" x3 ", "x2", "s1", "s2"]
    assert all(t.parent_id == "game" and t.instruction == game.instruction for t in proposed)
    assert proposed[0].metadata["variation"] == {"start": data[5].id, "step": 3, "episode_failed": True}
    assert [t.initial_state for t in await generator.propose(game, k=1)] == [" x3 "]
    assert await generator.propose(proposed[0], k=4) == [], "no variations of variations"

    # Through the curriculum: the same instruction from another start is a new task, not a duplicate
    pool = TaskPool([game, other])
    curriculum = Curriculum(pool, generator, CurriculumConfig(group_size=2, candidates_per_seed=2))
    for reward in (1.0, 0.0):
        curriculum.observe(episode(game, reward))
    decisions = await curriculum.expand()
    assert [(d.task.initial_state, d.accepted, d.reason.split(":")[0]) for d in decisions] == [
        (" x3 ", True, "accepted"),
        ("x2", False, "not selected"),
    ]
    assert curriculum.check(decisions[0].task.model_copy(update={"id": "again"})) is not None
    assert curriculum.check(game.model_copy(update={"id": "g2", "initial_state": "s9"})) is None
