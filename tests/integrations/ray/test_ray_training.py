"""GRPO on the driver learns from episodes that only ever existed in Ray workers: the workers' policy
copies record what they sampled on the transitions, the driver trains, and `sync_weights` sends the new
weights back through the object store before the next round."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")
pytest.importorskip("ray")

import cluster_driver
import torch
from cluster_driver import train_on_ray, worker_policy

from dreamgym_sdk import UntrainableEpisodeError
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts
from dreamgym_sdk.testing.worlds import (
    build_key_and_door_model,
    key_and_door_env,
    key_and_door_policy,
    key_and_door_tasks,
    success_rose,
)
from dreamgym_sdk.training import GRPOBackend, GRPOBackendConfig

# the workers unpickle the driver module's policy factory: ship its code by value
pytest.importorskip("ray").cloudpickle.register_pickle_by_value(cluster_driver)
pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_key_and_door_model(tmp_path_factory.mktemp("ray-training") / "tiny")


async def test_grpo_learns_from_episodes_played_only_on_ray_workers(model_dir: Path) -> None:
    before = key_and_door_policy(model_dir, seed=0).get_weights()
    config = RayConfig(num_workers=2, episodes_per_worker=32)
    driver, result = await train_on_ray(str(model_dir), config)
    after, curve, workers = driver.get_weights(), result["curve"], result["workers"]
    assert not any(torch.equal(v, after[k]) for k, v in before.items() if v.dim() > 1)
    assert [w["policy_version"] for w in workers] == [driver.version] * 2
    assert all(w["episodes"] > 0 for w in workers), workers
    assert result["policy_lag"] == [0.0] * len(curve)  # every round played the newest weights
    assert success_rose(curve), f"GRPO did not learn from Ray episodes: {curve}"


async def test_episodes_without_samples_from_workers_are_refused(model_dir: Path) -> None:
    backend = GRPOBackend(key_and_door_policy(model_dir), GRPOBackendConfig(group_size=2))
    async with RayRollouts(
        key_and_door_env,
        policy_factory=functools.partial(worker_policy, str(model_dir), record_samples=False),
        config=RayConfig(num_workers=1),
    ) as rollouts:
        episodes = await rollouts.run(key_and_door_tasks(1), group_size=2)
    with pytest.raises(UntrainableEpisodeError, match="carry no Sample"):
        await backend.observe(episodes[0])
