"""The driver of the multi-node test (run as its own process, connected to the cluster the test started):
GRPO on this process learns from episodes played by Ray workers on both nodes; the same training in one
process with the same seeds gives the curve to compare with. Writes the results as JSON."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import anyio
import ray

from dreamgym_sdk import EventBus, attach_trainer
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts
from dreamgym_sdk.rollout import RolloutRunner
from dreamgym_sdk.testing.worlds import key_and_door_env, key_and_door_policy, key_and_door_tasks
from dreamgym_sdk.training import GRPOBackend, GRPOBackendConfig

UPDATES, TASKS, GROUP = 16, 8, 8
CONFIG = GRPOBackendConfig(group_size=GROUP, learning_rate=5e-3, beta=0.0, seed=0, max_policy_lag=0)


def worker_policy(model_dir: str, **config: Any) -> Any:
    return key_and_door_policy(model_dir, seed=None, **config)  # each worker samples its own stream


async def train_on_ray(
    model_dir: str, config: RayConfig, updates: int = UPDATES
) -> tuple[Any, dict[str, Any]]:
    """GRPO on this process's policy, trained on episodes the Ray workers play; returns the trained policy
    and the run's record (on-policy success per update, the workers, the nodes, the policy lag)."""
    driver = key_and_door_policy(model_dir, seed=0)
    backend = GRPOBackend(driver, CONFIG)
    curve: list[float] = []
    async with (
        EventBus() as bus,
        RayRollouts(
            key_and_door_env,
            policy_factory=functools.partial(worker_policy, model_dir),
            bus=bus,
            config=config,
        ) as rollouts,
    ):
        attach_trainer(bus, backend)
        await rollouts.sync_weights(driver)  # the workers start from the driver's weights
        for update in range(updates):
            episodes = await rollouts.run(key_and_door_tasks(TASKS), group_size=GROUP, seed=1000 + update)
            await bus.join()  # the backend observed every episode
            curve.append(sum(e.success for e in episodes) / len(episodes))
            assert all(t.sample is not None for e in episodes for t in e.transitions)
            await backend.update()
            await rollouts.sync_weights(driver)
        workers = await rollouts.worker_info()
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    lags = [m["policy_lag"] for m in backend.history]
    return driver, {
        "curve": curve,
        "workers": workers,
        "nodes": nodes,
        "policy_lag": lags,
        "version": driver.version,
    }


async def in_process(model_dir: str) -> list[float]:
    policy = key_and_door_policy(model_dir, seed=0)
    backend = GRPOBackend(policy, CONFIG)
    runner = RolloutRunner(key_and_door_env, policy)
    curve: list[float] = []
    for update in range(UPDATES):
        episodes = await runner.run(key_and_door_tasks(TASKS), group_size=GROUP, seed=1000 + update)
        curve.append(sum(e.success for e in episodes) / len(episodes))
        for episode in episodes:
            await backend.observe(episode)
        await backend.update()
    return curve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--node-ip", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = RayConfig(
        address=args.address, node_ip_address=args.node_ip, num_workers=2, episodes_per_worker=32
    )
    _, result = anyio.run(train_on_ray, args.model_dir, config, backend="asyncio")
    result["in_process"] = anyio.run(in_process, args.model_dir)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
