"""The pure rules under the backends: multi-turn sequences with env masks, group advantages, GAE."""

from __future__ import annotations

import pytest

from dreamgym_sdk.training.sequences import (
    NotOneSequenceError,
    build_episode_sequence,
    gae,
    group_advantages,
)
from dreamgym_sdk.types import Sample


def sample(prompt: list[int], completion: list[int], *, logprob: float = -0.5) -> Sample:
    return Sample(
        prompt_ids=tuple(prompt),
        completion_ids=tuple(completion),
        logprobs=tuple(logprob for _ in completion),
        temperature=1.0,
    )


def test_multi_turn_episode_is_one_sequence_with_env_tokens_masked() -> None:
    s0 = sample([1, 2, 3], [10, 11, 99], logprob=-0.1)
    s1 = sample([1, 2, 3, 10, 11, 99, 50, 51], [12, 99], logprob=-0.2)  # env inserted 50, 51
    s2 = sample([1, 2, 3, 10, 11, 99, 50, 51, 12, 99, 52], [13, 99], logprob=-0.3)
    seq = build_episode_sequence([s0, s1, s2])
    assert seq.prompt_ids == [1, 2, 3]
    assert seq.completion_ids == [10, 11, 99, 50, 51, 12, 99, 52, 13, 99]
    assert seq.env_mask == [1, 1, 1, 0, 0, 1, 1, 0, 1, 1]
    assert seq.logprobs == [-0.1, -0.1, -0.1, 0.0, 0.0, -0.2, -0.2, 0.0, -0.3, -0.3]
    assert (seq.policy_tokens, seq.env_tokens, seq.steps) == (7, 3, 3)


def test_single_step_episode_has_no_env_tokens() -> None:
    seq = build_episode_sequence([sample([5, 6], [7, 8])])
    assert seq.env_mask == [1, 1] and seq.env_tokens == 0


@pytest.mark.parametrize(
    "second_prompt",
    [
        [1, 2, 3, 10],  # shorter than the first prompt plus its completion
        [1, 2, 4, 10, 99, 50],  # the first prompt changed (a sliding window)
        [1, 2, 3, 10, 98, 50],  # the completion changed (re-rendered from text)
    ],
)
def test_prompts_that_do_not_extend_the_episode_are_rejected(second_prompt: list[int]) -> None:
    with pytest.raises(NotOneSequenceError, match="step 1"):
        build_episode_sequence([sample([1, 2, 3], [10, 99]), sample(second_prompt, [11, 99])])


def test_empty_episode_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_episode_sequence([])


def test_group_advantages_are_normalised_with_unbiased_std() -> None:
    adv = group_advantages([1.0, 0.0, 0.0, 0.0])
    # mean 0.25, unbiased std 0.5
    assert adv == pytest.approx([0.75 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001, -0.25 / 0.5001])
    assert sum(adv) == pytest.approx(0.0)
    assert group_advantages([1.0, 0.0], scale=False) == [0.5, -0.5]


@pytest.mark.parametrize("rewards", [[0.0, 0.0, 0.0], [1.0, 1.0], [0.1, 0.1, 0.1, 0.1], [7.0]])
def test_zero_variance_groups_have_exactly_zero_advantage(rewards: list[float]) -> None:
    assert group_advantages(rewards) == [0.0] * len(rewards)
    assert group_advantages(rewards, scale=False) == [0.0] * len(rewards)


def test_gae_matches_hand_computation() -> None:
    # gamma = lam = 1: advantages are reward-to-go minus the value
    adv, ret = gae([0.0, 0.0, 1.0], [0.2, 0.5, 0.4], gamma=1.0, lam=1.0)
    assert ret == pytest.approx([1.0, 1.0, 1.0]) and adv == pytest.approx([0.8, 0.5, 0.6])
    # lam = 0: one-step TD errors, bootstrapped with last_value
    adv, ret = gae([1.0, 2.0], [0.5, 0.5], gamma=0.9, lam=0.0, last_value=1.0)
    assert adv == pytest.approx([1.0 + 0.9 * 0.5 - 0.5, 2.0 + 0.9 * 1.0 - 0.5])
    assert ret == pytest.approx([a + 0.5 for a in adv])
    with pytest.raises(ValueError, match="same length"):
        gae([1.0], [])
