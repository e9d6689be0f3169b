"""GRPOBackend: a TRL GRPO update on a tiny model changes its weights and records its metrics; zero-variance
groups; group bookkeeping; episodes it cannot train on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("torch", reason="GRPOBackend needs the train extra (torch)")
pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")

import torch

from dreamgym_sdk import Episode, Task
from dreamgym_sdk.errors import ConfigError, UntrainableEpisodeError
from dreamgym_sdk.testing import ScriptedPolicy
from dreamgym_sdk.training.config import GRPOBackendConfig, LoraSettings
from dreamgym_sdk.training.grpo import GRPOBackend
from dreamgym_sdk.types import sample_of

PolicyFactory = Callable[..., Any]
Rollout = Callable[..., Any]


def snapshot(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], model: Any) -> list[str]:
    return [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]


def alternating(episode: Episode) -> float:
    """Half of every group succeeds: each group has reward variance whatever was sampled."""
    return float(episode.group % 2)


async def test_trl_grpo_update_changes_weights_and_records_metrics(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=4, learning_rate=1e-2), reward=alternating)
    episodes = await rollout(policy, make_tasks(2), 4)
    sampled = [t.sample for e in episodes for t in e.transitions]
    policy_tokens = sum(len(s.completion_ids) for s in sampled if s is not None)
    decisions = sum(len(a) > 1 for s in sampled if s is not None for a in s.allowed)
    for episode in episodes:
        await backend.observe(episode)
    before = snapshot(policy.model)

    metrics = await backend.update()

    assert metrics is not None
    assert changed(before, policy.model), "the GRPO step left every weight unchanged"
    assert policy.version == 1 and backend.updates == 1
    assert metrics["episodes"] == 8 and metrics["groups"] == 2 and metrics["groups_trained"] == 2
    assert metrics["optimizer_steps"] == 1 and metrics["update"] == 1
    assert metrics["mean_reward"] == 0.5 and metrics["reward_std"] == 0.5
    assert metrics["advantage_mean"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["advantage_max"] > 0
    assert metrics["advantage_max"] == pytest.approx(-metrics["advantage_min"])
    for key in ("loss", "grad_norm", "entropy", "wall_time_s", "trl/reward", "trl/reward_std"):
        assert key in metrics
    assert metrics["trl/reward"] == 0.5  # TRL saw the rewards we handed it
    assert metrics["trl/frac_reward_zero_std"] == 0.0
    # TRL's loss saw only the policy's decisions: env tokens and the tokens the trie forced are masked out
    assert metrics["policy_tokens"] == policy_tokens
    assert 0 < decisions < policy_tokens
    assert metrics["trl/completions/mean_length"] == pytest.approx(decisions / 8)
    assert (metrics["env_tokens"] > 0) == any(len(e) > 1 for e in episodes)
    assert backend.history == [metrics]
    assert backend.trainer.state.log_history[-1]["loss"] == pytest.approx(metrics["loss"])
    assert await backend.update() is None  # nothing new observed
    backend.close()


async def test_kl_against_the_reference_model_is_reported(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    config = GRPOBackendConfig(group_size=2, learning_rate=1e-2, beta=0.1, num_iterations=2)
    backend = GRPOBackend(policy, config, reward=alternating)
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    metrics = await backend.update()
    assert metrics is not None and metrics["optimizer_steps"] == 2
    assert metrics["kl"] >= 0.0 and "trl/clip_ratio/region_mean" in metrics
    backend.close()


async def test_zero_variance_groups_are_skipped_without_a_step(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=2), reward=lambda e: 1.0)
    await rollout(policy, make_tasks(2), 2, observe=backend.observe)
    before = snapshot(policy.model)
    metrics = await backend.update()
    assert metrics is not None
    assert metrics["groups"] == metrics["groups_zero_std"] == 2 and metrics["groups_trained"] == 0
    assert metrics["optimizer_steps"] == 0 and metrics["advantage_max"] == 0.0
    assert not changed(before, policy.model) and policy.version == 0
    assert backend.trainer is None  # nothing to learn: TRL was never even built


async def test_kept_zero_variance_groups_give_zero_loss_and_no_change(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    config = GRPOBackendConfig(group_size=2, learning_rate=1e-2, skip_zero_std_groups=False)
    backend = GRPOBackend(policy, config, reward=lambda e: 1.0)
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    before = snapshot(policy.model)
    metrics = await backend.update()
    assert metrics is not None and metrics["optimizer_steps"] == 1
    assert metrics["loss"] == 0.0 and metrics["trl/frac_reward_zero_std"] == 1.0
    assert not changed(before, policy.model)  # zero advantage: zero gradient, Adam moves nothing
    backend.close()


async def test_groups_are_split_waited_for_and_dropped(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=2, max_group_wait=1), reward=lambda e: 0.0)
    await rollout(policy, make_tasks(1), 5, observe=backend.observe)  # 2 full groups + 1 left over
    metrics = await backend.update()
    assert metrics is not None and metrics["groups"] == 2
    assert backend.pending_episodes == 1  # the incomplete group survives the update that passed it over
    assert await backend.update() is None  # passed over a second time: dropped
    assert backend.pending_episodes == 0 and backend.dropped_episodes == 1


async def test_episodes_without_samples_raise_unless_skipping_is_asked_for(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    episodes = await rollout(ScriptedPolicy(["take key", "go north"]), make_tasks(1), 2)
    strict = GRPOBackend(policy, GRPOBackendConfig(group_size=2))
    with pytest.raises(UntrainableEpisodeError, match="carry no Sample") as raised:
        await strict.observe(episodes[0])
    assert raised.value.reason == "no_samples" and raised.value.episode_id == episodes[0].id
    lenient = GRPOBackend(policy, GRPOBackendConfig(group_size=2, skip_untrainable=True))
    for episode in episodes:
        await lenient.observe(episode)
    assert lenient.skipped["no_samples"] == 2 and lenient.pending_episodes == 0
    assert await lenient.update() is None


async def test_window_prompts_cannot_be_one_sequence(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy(prompt_style="window")
    config = GRPOBackendConfig(group_size=2, skip_untrainable=True)
    backend = GRPOBackend(policy, config, reward=alternating)
    episodes = await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    multi_step = sum(len(e) > 1 for e in episodes)
    assert backend.skipped["not_one_sequence"] == multi_step
    assert backend.pending_episodes == len(episodes) - multi_step
    if multi_step:
        with pytest.raises(UntrainableEpisodeError, match="does not extend"):
            await GRPOBackend(policy, GRPOBackendConfig(group_size=2)).observe(
                next(e for e in episodes if len(e) > 1)
            )


async def test_stale_episodes_are_untrainable_beyond_max_policy_lag(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    episodes = await rollout(policy, make_tasks(1), 2)
    policy.version += 3  # three weight updates since the episodes were played
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=2, max_policy_lag=2))
    with pytest.raises(UntrainableEpisodeError, match="3 updates ago") as raised:
        await backend.observe(episodes[0])
    assert raised.value.reason == "stale"
    await GRPOBackend(policy, GRPOBackendConfig(group_size=2, max_policy_lag=3)).observe(episodes[0])


async def test_lora_adapters_are_trained_with_kl_and_checkpointed(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]], tmp_path: Path
) -> None:
    pytest.importorskip("peft", reason="LoRA needs the train extra (peft)")
    config = GRPOBackendConfig(group_size=2, learning_rate=1e-2, beta=0.1, lora=LoraSettings(r=2))
    policy = make_policy()
    base = snapshot(policy.model)
    backend = GRPOBackend(policy, config, reward=alternating)
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    metrics = await backend.update()
    assert metrics is not None and metrics["kl"] >= 0.0  # the reference is the base model, adapters off
    state = policy.model.state_dict()  # the adapters live in the policy's own model
    assert any("lora_B" in k and float(v.abs().sum()) > 0 for k, v in state.items())  # B starts at zero
    frozen = {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
    assert all(torch.equal(base[k], frozen[k]) for k in base)
    backend.save(tmp_path / "ckpt")
    fresh = make_policy()
    GRPOBackend(fresh, config).load(tmp_path / "ckpt")
    restored = fresh.model.state_dict()
    assert state.keys() == restored.keys() and all(torch.equal(v, restored[k]) for k, v in state.items())


async def test_training_runs_off_the_event_loop(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    class Probe(GRPOBackend):
        acted_during_training: str | None = None

        def _train(self, batch: Any) -> dict[str, float]:
            # from the training thread, ask the event loop to run a whole act (generation included):
            # this would deadlock if training blocked the loop or generation waited for training
            self.acted_during_training = anyio.from_thread.run(
                self.policy.act, make_tasks(1)[0], "a room", [], {"episode_id": "probe"}
            )
            return super()._train(batch)

    policy = make_policy()
    backend = Probe(policy, GRPOBackendConfig(group_size=2, learning_rate=1e-2), reward=alternating)
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    assert await backend.update() is not None
    assert sample_of(backend.acted_during_training or "") is not None
    backend.close()


def test_config_errors(make_policy: PolicyFactory) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        GRPOBackend(make_policy(temperature=0.0))
    policy = make_policy()
    policy.model.config._name_or_path = ""
    with pytest.raises(ConfigError, match="reference model"):
        GRPOBackend(policy, GRPOBackendConfig(beta=0.1))
    with pytest.raises(ConfigError, match="cuda"):
        GRPOBackend(make_policy(), GRPOBackendConfig(device="cuda"))
