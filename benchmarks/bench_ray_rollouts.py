"""Rollout throughput on Ray: 1 worker process against 2, with a local HF policy in every worker.

Each worker holds its own copy of a tiny HF policy (built here, no download) and plays the two-step
key-and-door world; the episodes stream back to the driver's bus. After one warm-up round (model loading,
Ray's first calls), every configuration plays the same rounds of ``--tasks`` groups of 8 episodes, and the
weights are synced to the workers between rounds as in training. Prints one JSON object: steps/s of the
in-process ``RolloutRunner`` (the baseline: one process, torch using every core), of Ray with 1 worker
and with 2 workers (one core each), and the ratio of 2 workers to 1.

Usage: ``python benchmarks/bench_ray_rollouts.py [--quick] [--hidden 256] [--layers 4]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk._versions import package_versions
from dreamgym_sdk.rollout import RolloutRunner
from dreamgym_sdk.testing.worlds import (
    KEY_AND_DOOR_ACTIONS,
    key_and_door_env,
    key_and_door_policy,
    key_and_door_tasks,
)

GROUP = 8


def build_model(directory: Path, hidden: int, layers: int) -> Path:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    corpus = [*KEY_AND_DOOR_ACTIONS, "a locked room with a key and an apple"] * 5
    return build_tiny_model(directory, corpus, hidden=hidden, layers=layers, heads=4)


def worker_policy(model_dir: str) -> Any:
    return key_and_door_policy(model_dir, seed=None)


async def in_process(model_dir: str, rounds: int, tasks: int) -> float:
    policy = key_and_door_policy(model_dir, seed=0)
    runner = RolloutRunner(key_and_door_env, policy)
    await runner.run(key_and_door_tasks(tasks), group_size=GROUP, seed=0)  # warm-up
    started, steps = time.perf_counter(), 0
    for r in range(rounds):
        episodes = await runner.run(key_and_door_tasks(tasks), group_size=GROUP, seed=1 + r)
        steps += sum(len(e) for e in episodes)
    return steps / (time.perf_counter() - started)


async def on_ray(model_dir: str, workers: int, rounds: int, tasks: int) -> float:
    from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts

    driver = key_and_door_policy(model_dir, seed=0)
    config = RayConfig(num_workers=workers, episodes_per_worker=tasks * GROUP, max_in_flight=tasks * GROUP)
    factory = functools.partial(worker_policy, model_dir)
    async with RayRollouts(key_and_door_env, policy_factory=factory, config=config) as rollouts:
        await rollouts.run(key_and_door_tasks(tasks), group_size=GROUP, seed=0)  # warm-up
        started, steps = time.perf_counter(), 0
        for r in range(rounds):
            await rollouts.sync_weights(driver)
            episodes = await rollouts.run(key_and_door_tasks(tasks), group_size=GROUP, seed=1 + r)
            steps += sum(len(e) for e in episodes)
        return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description="Rollout throughput on Ray: 1 worker against 2.")
    parser.add_argument("--quick", action="store_true", help="one small round (a CI smoke run)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    rounds, tasks = (1, 2) if args.quick else (5, 8)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_model(Path(tmp) / "policy", args.hidden, args.layers))
        baseline = anyio.run(in_process, model_dir, rounds, tasks)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            one = anyio.run(on_ray, model_dir, 1, rounds, tasks)
            two = anyio.run(on_ray, model_dir, 2, rounds, tasks)
        finally:
            ray.shutdown()
    result = {
        "workload": {
            "rounds": rounds,
            "episodes_per_round": tasks * GROUP,
            "steps_per_episode": 2,
            "policy": {"hidden": args.hidden, "layers": args.layers},
        },
        "steps_per_s": {
            "in_process": round(baseline, 1),
            "ray_1_worker": round(one, 1),
            "ray_2_workers": round(two, 1),
        },
        "ratio_2_workers_vs_1": round(two / one, 2),
        "ratio_2_workers_vs_in_process": round(two / baseline, 2),
        "cpus": os.cpu_count(),
        "versions": package_versions(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
