"""What the parts of :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer` share: its settings, the open table,
the embedding queue (searches and adds share embedder calls) and whether the vector index exists."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.errors import ReplayBufferError
from dreamgym_sdk.replay._batching import Coalescer
from dreamgym_sdk.replay.base import Embedder
from dreamgym_sdk.replay.config import ReplayConfig

__all__ = ["LanceTableState"]


class LanceTableState:
    """The state :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer` sets up and its parts (writing,
    searching, maintenance) use."""

    config: ReplayConfig
    embedder: Embedder
    _table: Any
    _closed: bool
    _rows: int
    _vector_indexed_rows: int | None
    """Rows when the vector index was (re)built; ``None`` without one."""
    _quantized: bool
    """Whether the vector index compares quantized vectors (then: refine)."""
    _embedder_queue: Coalescer[list[str], NDArray[np.float32]]
    """Concurrent searches and adds share embedder calls."""

    def _live_table(self) -> Any:
        if self._table is None:
            raise ReplayBufferError("the replay buffer is not open: use it inside `async with`")
        return self._table

    def _check_writable(self) -> None:
        if self.config.read_only:
            raise ReplayBufferError(f"the replay table at {self.config.uri!r} was opened read-only")

    async def _embed(self, texts: list[str]) -> NDArray[np.float32]:
        return await self._embedder_queue.submit(texts)

    async def _embed_batch(self, requests: list[list[str]]) -> list[NDArray[np.float32]]:
        """One embedder call for every text of concurrent searches and adds."""
        flat = [text for texts in requests for text in texts]
        vectors = await self.embedder.embed(flat)
        out: list[NDArray[np.float32]] = []
        start = 0
        for texts in requests:
            out.append(vectors[start : start + len(texts)])
            start += len(texts)
        return out
