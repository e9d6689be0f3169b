"""Collection policies: expert, ε-random admissible, mixtures; reproducible per decision."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from dreamgym_sdk import Source, Task, Transition
from dreamgym_sdk.collect import ExpertPolicy, MixturePolicy, RandomAdmissiblePolicy, admissible_actions
from dreamgym_sdk.testing import FunctionPolicy

TASK = Task(id="t1", instruction="win")
ACTIONS = [f"action {i}" for i in range(10)]


def history(*actions: str) -> list[Transition]:
    return [
        Transition(task_id="t1", episode_id="e", step=i, state="s", action=a, next_state="s", reward=0.0,
                   source=Source.REAL)
        for i, a in enumerate(actions)
    ]  # fmt: skip


def constant(action: str) -> FunctionPolicy:
    def act(task: Task, obs: str, hist: Sequence[Transition], info: Mapping[str, Any]) -> str:
        return action

    return FunctionPolicy(act)


def test_admissible_actions_reads_either_key() -> None:
    assert admissible_actions({"admissible_commands": ["a", "b"]}) == ["a", "b"]
    assert admissible_actions({"admissible_actions": ("c",)}) == ["c"]
    assert admissible_actions({"admissible_commands": "not a list"}) == []
    assert admissible_actions({}) == []


async def test_expert_prefers_the_replanned_policy_commands() -> None:
    expert = ExpertPolicy()
    info = {"policy_commands": ["take apple", "eat apple"], "walkthrough": ["look", "take apple"]}
    assert await expert.act(TASK, "", history(), info) == "take apple"


async def test_expert_follows_the_walkthrough_while_it_applies() -> None:
    expert = ExpertPolicy(fallback="wait")
    info = {"walkthrough": ["open door", "go north"]}
    assert await expert.act(TASK, "", history(), info) == "open door"
    assert await expert.act(TASK, "", history("open door"), info) == "go north"
    assert await expert.act(TASK, "", history("open door", "go north"), info) == "wait"  # past its end
    assert await expert.act(TASK, "", history("dance"), info) == "wait"  # off the walkthrough
    with pytest.raises(ValueError, match="no expert action"):
        await ExpertPolicy(fallback=None).act(TASK, "", history(), {})


async def test_random_policy_picks_admissible_actions_reproducibly() -> None:
    policy = RandomAdmissiblePolicy(seed=1)
    info = {"admissible_commands": ACTIONS, "seed": 5}
    picks = [await policy.act(TASK, "", history(*["x"] * step), info) for step in range(30)]
    assert set(picks) <= set(ACTIONS) and len(set(picks)) > 3
    again = [await RandomAdmissiblePolicy(seed=1).act(TASK, "", history(*["x"] * s), info) for s in range(30)]
    assert picks == again
    other_episode = [
        await policy.act(TASK, "", history(*["x"] * s), {**info, "seed": 6}) for s in range(30)
    ]  # fmt: skip
    assert other_episode != picks
    other_seed = [
        await RandomAdmissiblePolicy(seed=2).act(TASK, "", history(*["x"] * s), info) for s in range(30)
    ]
    assert other_seed != picks


async def test_epsilon_mixes_random_actions_into_the_base_policy() -> None:
    info = {"admissible_commands": ACTIONS, "seed": 0}
    never = RandomAdmissiblePolicy(0.0, base=constant("expert move"))
    assert {await never.act(TASK, "", history(*["x"] * s), info) for s in range(20)} == {"expert move"}
    sometimes = RandomAdmissiblePolicy(0.3, seed=4, base=constant("expert move"))
    picks = Counter(
        [await sometimes.act(Task(id=f"t{i}", instruction=""), "", history(), info) for i in range(400)]
    )
    assert 0.2 < 1 - picks["expert move"] / 400 < 0.4
    with pytest.raises(ValueError, match="epsilon"):
        RandomAdmissiblePolicy(1.5)


async def test_random_policy_needs_admissible_actions() -> None:
    with pytest.raises(ValueError, match="admissible"):
        await RandomAdmissiblePolicy().act(TASK, "", history(), {})
    # With a base policy to fall back on, no admissible list is not an error.
    assert await RandomAdmissiblePolicy(0.5, base=constant("b")).act(TASK, "", history(), {}) == "b"


async def test_mixture_draws_per_episode_by_weight() -> None:
    mixture = MixturePolicy([(constant("a"), 3.0), (constant("b"), 1.0)], seed=0)
    firsts = Counter()
    for episode in range(400):
        info = {"seed": episode}
        actions = {await mixture.act(TASK, "", history(*["x"] * s), info) for s in range(5)}
        assert len(actions) == 1  # one policy plays the whole episode
        firsts.update(actions)
    assert 0.65 < firsts["a"] / 400 < 0.85


async def test_mixture_per_step_interleaves_policies() -> None:
    mixture = MixturePolicy([(constant("a"), 1.0), (constant("b"), 1.0)], seed=0, per="step")
    actions = [await mixture.act(TASK, "", history(*["x"] * s), {"seed": 1}) for s in range(20)]
    assert set(actions) == {"a", "b"}
    assert actions == [await mixture.act(TASK, "", history(*["x"] * s), {"seed": 1}) for s in range(20)]


def test_mixture_validates_its_weights() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MixturePolicy([])
    with pytest.raises(ValueError, match="positive"):
        MixturePolicy([(constant("a"), 0.0)])
