"""Backend checkpoints: save → load reproduces weights, optimizer, counters and RNG; saves are atomic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="checkpoints need the train extra (torch)")
pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")

import torch

from dreamgym_sdk import Episode, Task
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.training import _checkpoint
from dreamgym_sdk.training.config import GRPOBackendConfig, PPOBackendConfig
from dreamgym_sdk.training.grpo import GRPOBackend
from dreamgym_sdk.training.ppo import PPOBackend

PolicyFactory = Callable[..., Any]
Rollout = Callable[..., Any]


def alternating(episode: Episode) -> float:
    return float(episode.group % 2)


def assert_same_tensors(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()  # pyright: ignore[reportUnknownMemberType]
        for key in a:  # pyright: ignore[reportUnknownVariableType]
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)  # pyright: ignore[reportUnknownArgumentType]
        for x, y in zip(a, b, strict=True):  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            assert_same_tensors(x, y)
    else:
        assert a == b


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def same_parameters(a: HFPolicy, b: HFPolicy) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True))


async def test_grpo_checkpoint_round_trip(
    make_policy: PolicyFactory,
    rollout: Rollout,
    make_tasks: Callable[[int], list[Task]],
    tmp_path: Path,
) -> None:
    policy = make_policy()
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=2, learning_rate=1e-2), reward=alternating)
    await rollout(policy, make_tasks(2), 2, observe=backend.observe)
    assert await backend.update() is not None
    target = tmp_path / "ckpt"
    backend.save(target)
    assert entries(tmp_path) == ["ckpt"]  # no temporary directory left behind

    fresh = make_policy()
    assert not same_parameters(fresh, policy)
    restored = GRPOBackend(fresh, GRPOBackendConfig(group_size=2, learning_rate=1e-2))
    restored.load(target)

    assert same_parameters(fresh, policy)
    assert restored.updates == backend.updates == 1 and fresh.version == policy.version
    assert restored.trainer.state.global_step == backend.trainer.state.global_step == 1
    assert_same_tensors(restored.trainer.optimizer.state_dict(), backend.trainer.optimizer.state_dict())
    assert torch.equal(fresh.generator.get_state(), policy.generator.get_state())
    exported = HFPolicy.from_pretrained(target / "model", policy.config)
    assert same_parameters(exported, policy)
    backend.close()
    restored.close()


async def test_ppo_checkpoint_round_trip_includes_the_value_head(
    make_policy: PolicyFactory,
    rollout: Rollout,
    make_tasks: Callable[[int], list[Task]],
    tmp_path: Path,
) -> None:
    policy = make_policy()
    backend = PPOBackend(policy, PPOBackendConfig(learning_rate=1e-2, ent_coef=0.1))
    await rollout(policy, make_tasks(1), 2, observe=backend.observe)
    assert await backend.update() is not None
    backend.save(tmp_path / "ckpt")

    fresh = make_policy()
    restored = PPOBackend(fresh, PPOBackendConfig(learning_rate=1e-2, ent_coef=0.1))
    restored.load(tmp_path / "ckpt")
    assert same_parameters(fresh, policy) and restored.updates == 1
    assert torch.equal(restored.value_head.weight, backend.value_head.weight)
    assert_same_tensors(restored._optimizer.state_dict(), backend._optimizer.state_dict())  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(ConfigError, match="'ppo' checkpoint, not 'grpo'"):
        GRPOBackend(make_policy()).load(tmp_path / "ckpt")


def test_saves_are_atomic_and_load_survives_an_interrupted_swap(
    make_policy: PolicyFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = make_policy()
    backend = PPOBackend(policy)
    target = tmp_path / "ckpt"
    backend.save(target)
    first = (target / _checkpoint.STATE_FILE).read_text()

    def fail(obj: object, file: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_checkpoint, "save_torch", fail)
    backend.updates = 5
    with pytest.raises(OSError, match="disk full"):
        backend.save(target)
    assert (target / _checkpoint.STATE_FILE).read_text() == first  # the old checkpoint is untouched
    assert entries(tmp_path) == ["ckpt"]
    monkeypatch.undo()

    target.rename(tmp_path / "ckpt.old")  # a crash between the two renames of a save
    backend.load(target)
    assert backend.updates == 0
    with pytest.raises(FileNotFoundError):
        backend.load(tmp_path / "nowhere")
