"""Child process of the kill -9 test: streams adds into a LanceDB buffer, printing every acknowledged id.

Usage: ``python kill_writer.py <uri> <prefix>``. Prints ``ready``, then one line of ids per ``add`` that
returned. Four concurrent writers, maintenance every 10 writes (with pruning), so a kill can land in a
write, a compaction or a prune.
"""

from __future__ import annotations

import sys

import anyio

from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.replay import LanceDBReplayBuffer
from dreamgym_sdk.types import Source, Transition


async def writer(buffer: LanceDBReplayBuffer, prefix: str, w: int) -> None:
    i = 0
    while True:
        batch = [
            Transition(
                id=f"{prefix}-w{w}-{i}-{j}", task_id=f"task-{w}", episode_id=f"{prefix}-w{w}-{i}", step=j,
                state=f"state {i} {j} of writer {w}", action=f"act {j}", next_state=f"state {i} {j + 1}",
                reward=float(j == 2), source=Source.REAL,
            )
            for j in range(3)
        ]  # fmt: skip
        await buffer.add(batch)
        print(" ".join(t.id for t in batch), flush=True)
        i += 1


async def main(uri: str, prefix: str) -> None:
    embedder = HashingEmbedder(dim=64)
    async with LanceDBReplayBuffer(
        uri, embedder=embedder, optimize_every_writes=10, prune_older_than_s=0
    ) as buffer:
        print("ready", flush=True)
        async with anyio.create_task_group() as tg:
            for w in range(4):
                tg.start_soon(writer, buffer, prefix, w)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    anyio.run(main, sys.argv[1], sys.argv[2])
