"""GRPO on the driver learns from episodes that only ever existed in Ray workers: the workers' policy
copies record what they sampled on the transitions, the driver trains, and `sync_weights` sends the new
weights back through the object store before the next round."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")
pytest.importorskip("ray")

import torch

from dreamgym_sdk import EventBus, UntrainableEpisodeError, attach_trainer
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts
from dreamgym_sdk.testing.worlds import (
    build_key_and_door_model,
    key_and_door_env,
    key_and_door_policy,
    key_and_door_tasks,
)
from dreamgym_sdk.training import GRPOBackend, GRPOBackendConfig

pytest.importorskip("ray").cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_key_and_door_model(tmp_path_factory.mktemp("ray-training") / "tiny")


def worker_policy(model_dir: Path, **config: Any) -> Any:
    return key_and_door_policy(model_dir, seed=None, **config)  # each worker samples its own stream


async def test_grpo_learns_from_episodes_played_only_on_ray_workers(model_dir: Path) -> None:
    driver = key_and_door_policy(model_dir, seed=0)
    before = {k: v.clone() for k, v in driver.model.state_dict().items()}
    config = GRPOBackendConfig(group_size=8, learning_rate=5e-3, beta=0.0, seed=0, max_policy_lag=0)
    backend = GRPOBackend(driver, config)
    ray_config = RayConfig(num_workers=2, episodes_per_worker=32)
    curve: list[float] = []
    async with (
        EventBus() as bus,
        RayRollouts(
            key_and_door_env,
            policy_factory=functools.partial(worker_policy, model_dir),
            bus=bus,
            config=ray_config,
        ) as rollouts,
    ):
        attach_trainer(bus, backend)
        await rollouts.sync_weights(driver)  # the workers start from the driver's weights
        for update in range(15):
            episodes = await rollouts.run(key_and_door_tasks(8), group_size=8, seed=1000 + update)
            await bus.join()  # the backend observed every episode
            curve.append(sum(e.success for e in episodes) / len(episodes))
            assert all(t.sample is not None for e in episodes for t in e.transitions)
            assert await backend.update() is not None
            await rollouts.sync_weights(driver)
        workers = await rollouts.worker_info()
    assert not any(torch.equal(v, driver.model.state_dict()[k]) for k, v in before.items() if v.dim() > 1)
    assert [w["policy_version"] for w in workers] == [driver.version] * 2
    assert all(w["episodes"] > 0 for w in workers), workers
    late = sum(curve[-3:]) / 3
    assert curve[0] < 0.2 and late >= 0.4, f"GRPO did not learn from Ray episodes: {curve}"


async def test_episodes_without_samples_from_workers_are_refused(model_dir: Path) -> None:
    backend = GRPOBackend(key_and_door_policy(model_dir), GRPOBackendConfig(group_size=2))
    async with RayRollouts(
        key_and_door_env,
        policy_factory=functools.partial(worker_policy, model_dir, record_samples=False),
        config=RayConfig(num_workers=1),
    ) as rollouts:
        episodes = await rollouts.run(key_and_door_tasks(1), group_size=2)
    with pytest.raises(UntrainableEpisodeError, match="carry no Sample"):
        await backend.observe(episodes[0])
