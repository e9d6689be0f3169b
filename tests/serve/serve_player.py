"""An agent in its own process for the serve training test: an HFPolicy playing the key-and-door world
through `Client` against the test's server. Reads commands on stdin, one per line:

    play <weights.safetensors or -> <version> <seed> <record: 0/1>

loads the trainer's weights (the reload hook of a served agent), plays 8 groups of 8 episodes and answers
``done <episodes>`` on stdout."""

from __future__ import annotations

import sys

import anyio

from dreamgym_sdk.rollout import RolloutRunner
from dreamgym_sdk.serve import Client
from dreamgym_sdk.testing.worlds import key_and_door_policy, key_and_door_tasks


async def main(url: str, token: str, model_dir: str) -> None:
    policies = {
        record: key_and_door_policy(model_dir, seed=record, record_samples=bool(record)) for record in (0, 1)
    }
    for line in sys.stdin:
        _, weights, version, seed, record = line.split()
        policy = policies[int(record)]
        if weights != "-":
            policy.load_weights(weights, version=int(version))
        runner = RolloutRunner(lambda group: Client(url, token=token), policy)
        episodes = await runner.run(key_and_door_tasks(8), group_size=8, seed=int(seed))
        print("done", len(episodes), flush=True)


if __name__ == "__main__":
    url, token, model_dir = sys.argv[1:4]
    anyio.run(main, url, token, model_dir)
