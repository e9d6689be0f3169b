"""PPOBackend: a turn-level PPO update changes the policy and its value head and reports its metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("torch", reason="PPOBackend needs the train extra (torch)")

import torch

from dreamgym_sdk import Task, UntrainableEpisodeError
from dreamgym_sdk.testing import ScriptedPolicy
from dreamgym_sdk.training.config import LoraSettings, PPOBackendConfig
from dreamgym_sdk.training.ppo import PPOBackend

PolicyFactory = Callable[..., Any]
Rollout = Callable[..., Any]


async def test_ppo_update_changes_policy_and_value_head(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    config = PPOBackendConfig(learning_rate=1e-2, epochs=2, minibatch_size=4, kl_beta=0.05, ent_coef=0.01)
    backend = PPOBackend(policy, config)
    episodes = await rollout(policy, make_tasks(2), 3, observe=backend.observe)
    before = [p.detach().clone() for p in policy.model.parameters()]

    metrics = await backend.update()

    assert metrics is not None
    after = list(policy.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert backend.value_head is not None and float(backend.value_head.weight.detach().abs().sum()) > 0
    steps = sum(len(e) for e in episodes)
    assert metrics["episodes"] == 6 and metrics["steps"] == steps
    assert metrics["optimizer_steps"] == 2 * -(-steps // 4)  # epochs × minibatches
    assert policy.version == metrics["optimizer_steps"]
    for key in ("loss", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "kl"):
        assert key in metrics
    assert metrics["value_mean"] == 0.0  # the value head starts at zero
    assert metrics["mean_reward"] == pytest.approx(sum(e.total_reward for e in episodes) / 6)
    assert metrics["policy_lag"] == 0.0
    assert backend.history == [metrics]


async def test_ppo_with_lora_trains_only_the_adapters(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    pytest.importorskip("peft", reason="LoRA needs the train extra (peft)")
    policy = make_policy()
    # the entropy bonus gives a gradient whatever the rewards were
    config = PPOBackendConfig(learning_rate=1e-2, ent_coef=0.5, lora=LoraSettings(r=2))
    backend = PPOBackend(policy, config)
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    base = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
    metrics = await backend.update()
    assert metrics is not None and metrics["optimizer_steps"] == 1
    state = policy.model.state_dict()  # the policy's own model now carries the adapters
    lora_b = [k for k in state if "lora_B" in k]
    assert lora_b and any(float(state[k].abs().sum()) > 0 for k in lora_b)  # B starts at zero
    frozen = {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
    assert all(torch.equal(base[k], frozen[k]) for k in base)


async def test_ppo_rejects_episodes_without_samples_unless_skipping(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    episodes = await rollout(ScriptedPolicy(["take key", "go north"]), make_tasks(1), 2)
    with pytest.raises(UntrainableEpisodeError, match="carry no Sample"):
        await PPOBackend(policy).observe(episodes[0])
    backend = PPOBackend(policy, PPOBackendConfig(skip_untrainable=True))
    for episode in episodes:
        await backend.observe(episode)
    assert backend.skipped["no_samples"] == 2
    assert await backend.update() is None
