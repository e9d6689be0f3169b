"""An ``add`` that returned is durable: a writer killed with SIGKILL mid-stream reopens to a readable
table holding every acknowledged record."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest

from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.replay import LanceDBReplayBuffer

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("kill_writer.py")


async def _run_and_kill(uri: str, prefix: str, acks_before_kill: int) -> set[str]:
    """Start the writer, read acknowledged ids until there are enough, SIGKILL it; return the ids."""
    acked: set[str] = set()
    buffer = b""
    async with await anyio.open_process(
        [sys.executable, str(CHILD), uri, prefix], cwd=ROOT, stderr=None
    ) as process:
        assert process.stdout is not None
        try:
            with anyio.fail_after(120):
                async for chunk in process.stdout:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line and line != b"ready":
                            acked.update(line.decode().split())
                    if len(acked) >= acks_before_kill:
                        break
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    assert len(acked) >= acks_before_kill
    return acked


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
async def test_acknowledged_adds_survive_kill_9(tmp_path: Path) -> None:
    uri = str(tmp_path / "replay")
    acked = await _run_and_kill(uri, "first", acks_before_kill=300)
    acked |= await _run_and_kill(uri, "second", acks_before_kill=240)  # a killed table takes new writes
    async with LanceDBReplayBuffer(uri, embedder=HashingEmbedder(dim=64)) as buffer:
        stored = [t async for batch in buffer.scan(batch_size=500) for t in batch]
        ids = [t.id for t in stored]
        assert len(ids) == len(set(ids)), "a record was stored twice"
        missing = acked - set(ids)
        assert not missing, f"{len(missing)} acknowledged ids were lost, e.g. {sorted(missing)[:3]}"
        assert await buffer.count() == len(ids)
        t = stored[0]
        assert (await buffer.search(t.state, t.action, k=1))[0].transition == t
