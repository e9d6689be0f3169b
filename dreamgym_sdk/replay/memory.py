"""An in-memory replay buffer: the reference implementation of the protocol, exact brute-force search."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.embeddings.cache import CachedEmbedder
from dreamgym_sdk.embeddings.factory import make_embedder
from dreamgym_sdk.errors import ReplayBufferError
from dreamgym_sdk.replay._records import (
    content_hash,
    dedupe_by_id,
    embedding_text,
    matches,
    reward_buckets,
    validate_transitions,
)
from dreamgym_sdk.replay.base import Embedder, ReplayStats, SearchHit
from dreamgym_sdk.types import Source, Transition

__all__ = ["InMemoryReplayBuffer"]


class InMemoryReplayBuffer:
    """A replay buffer held in process memory, searched exactly with numpy.

    The reference implementation of :class:`~dreamgym_sdk.replay.ReplayBuffer`: simple enough to read in
    one sitting, exact, and fine up to some hundred thousand transitions. Nothing survives the process.

    ```python
    import anyio
    from dreamgym_sdk.embeddings import HashingEmbedder
    from dreamgym_sdk.replay import InMemoryReplayBuffer

    async def main() -> None:
        async with InMemoryReplayBuffer(embedder=HashingEmbedder()) as buffer:
            assert await buffer.count() == 0

    anyio.run(main)
    ```

    Args:
        embedder: the embedder; defaults to the offline MiniLM. Wrapped in a cache unless ``cache_size`` is 0.
        cache_size: vectors kept in the embedding cache.
    """

    def __init__(self, *, embedder: Embedder | None = None, cache_size: int = 32_768) -> None:
        inner = embedder if embedder is not None else make_embedder()
        self.embedder: Embedder = (
            inner
            if isinstance(inner, CachedEmbedder) or cache_size == 0
            else CachedEmbedder(inner, maxsize=cache_size)
        )
        self._items: dict[str, Transition] = {}
        self._vectors: dict[str, NDArray[np.float32]] = {}
        self._hashes: Counter[str] = Counter()
        self._index: _Index | None = None  # cache, dropped on writes
        self._open = False
        self._closed = False

    async def __aenter__(self) -> Self:
        if self._open or self._closed:
            raise ReplayBufferError("an InMemoryReplayBuffer can be entered once")
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the buffer; idempotent. The contents are dropped."""
        self._open = False
        self._closed = True
        self._items.clear()
        self._vectors.clear()
        self._hashes.clear()
        self._index = None

    def _check_open(self) -> None:
        if not self._open:
            raise ReplayBufferError("the replay buffer is not open: use it inside `async with`")

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Store ``transitions``; ids already stored are skipped (the first of a repeated id wins)."""
        self._check_open()
        validate_transitions(transitions)
        batch = [t for t in dedupe_by_id(transitions) if t.id not in self._items]
        if not batch:
            return
        vectors = await self.embedder.embed([embedding_text(t.state, t.action) for t in batch])
        for t, v in zip(batch, vectors, strict=True):
            if t.id not in self._items:  # another add may have stored it while we embedded
                self._items[t.id] = t
                self._vectors[t.id] = v
                self._hashes[content_hash(t)] += 1
        self._index = None

    async def search(
        self,
        state: str,
        action: str,
        *,
        k: int = 4,
        environment: str | None = None,
        task_id: str | None = None,
        source: Source | None = Source.REAL,
    ) -> list[SearchHit]:
        """The ``k`` most similar stored transitions, best first (exact cosine similarity)."""
        self._check_open()
        if k < 1:
            raise ValueError("k must be at least 1")
        query = (await self.embedder.embed([embedding_text(state, action)]))[0]
        if self._index is None:
            self._index = _Index.of(list(self._items.values()), self._vectors, self.embedder.dim)
        index = self._index
        rows = index.rows(environment=environment, task_id=task_id, source=source)
        if rows is not None and not len(rows):
            return []
        scores = index.matrix @ query if rows is None else index.matrix[rows] @ query
        top = np.argsort(-scores, kind="stable")[:k]
        chosen = top if rows is None else rows[top]
        return [
            SearchHit(index.items[int(row)], float(scores[j])) for row, j in zip(chosen, top, strict=True)
        ]

    async def get(self, ids: Sequence[str]) -> list[Transition]:
        """The stored transitions with these ids, in the order given; unknown ids are skipped."""
        self._check_open()
        return [self._items[i] for i in ids if i in self._items]

    async def sample(
        self,
        n: int,
        *,
        source: Source | None = None,
        environment: str | None = None,
        seed: int | None = None,
    ) -> list[Transition]:
        """Up to ``n`` distinct transitions drawn uniformly (reproducible for a ``seed`` and content)."""
        self._check_open()
        if n < 0:
            raise ValueError("n must be >= 0")
        ids = sorted(i for i, t in self._items.items() if matches(t, source=source, environment=environment))
        if not ids or n == 0:
            return []
        chosen = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
        return [self._items[ids[i]] for i in chosen]

    async def count(
        self,
        *,
        source: Source | None = None,
        environment: str | None = None,
        task_id: str | None = None,
    ) -> int:
        """Number of stored transitions matching the filters."""
        self._check_open()
        if source is None and environment is None and task_id is None:
            return len(self._items)
        return sum(
            matches(t, source=source, environment=environment, task_id=task_id) for t in self._items.values()
        )

    async def stats(self) -> ReplayStats:
        """Counts by source, environment and reward."""
        self._check_open()
        items = list(self._items.values())
        return ReplayStats(
            total=len(items),
            by_source=dict(sorted(Counter(t.source.value for t in items).items())),
            by_environment=dict(sorted(Counter(t.environment for t in items).items())),
            by_reward=reward_buckets(dict(Counter(float(t.reward) for t in items))) if items else {},
            successes=sum(t.success for t in items),
        )

    async def delete(
        self,
        *,
        ids: Sequence[str] | None = None,
        environment: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        source: Source | None = None,
    ) -> int:
        """Delete the matching transitions; return how many. At least one filter is required."""
        self._check_open()
        if ids is None and environment is None and task_id is None and episode_id is None and source is None:
            raise ValueError("delete() needs a filter")
        wanted = frozenset(ids) if ids is not None else None
        doomed = [
            t
            for t in self._items.values()
            if matches(
                t, ids=wanted, environment=environment, task_id=task_id, episode_id=episode_id, source=source
            )
        ]
        for t in doomed:
            del self._items[t.id]
            del self._vectors[t.id]
            h = content_hash(t)
            self._hashes[h] -= 1
            if self._hashes[h] <= 0:
                del self._hashes[h]
        if doomed:
            self._index = None
        return len(doomed)

    async def contains_content(self, hashes: Sequence[str]) -> set[str]:
        """Which of these content hashes are stored."""
        self._check_open()
        return {h for h in hashes if h in self._hashes}

    async def scan(
        self,
        *,
        batch_size: int = 1024,
        source: Source | None = None,
        environment: str | None = None,
    ) -> AsyncIterator[list[Transition]]:
        """Iterate over the matching transitions in batches (insertion order)."""
        self._check_open()
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        selected = [
            t for t in list(self._items.values()) if matches(t, source=source, environment=environment)
        ]
        for start in range(0, len(selected), batch_size):
            yield selected[start : start + batch_size]

    def __repr__(self) -> str:
        return f"InMemoryReplayBuffer(rows={len(self._items)}, embedder={self.embedder.name!r})"


@dataclass(frozen=True, slots=True)
class _Index:
    """The stored vectors as one matrix, with the rows of each task and each row's filter columns, so a
    search scans only what its filters allow (a task's rows, not the whole buffer)."""

    items: list[Transition]
    matrix: NDArray[np.float32]
    by_task: dict[str, NDArray[np.intp]]
    environments: NDArray[np.object_]
    sources: NDArray[np.object_]

    @classmethod
    def of(cls, items: list[Transition], vectors: dict[str, NDArray[np.float32]], dim: int) -> _Index:
        matrix = np.stack([vectors[t.id] for t in items]) if items else np.empty((0, dim))
        by_task: dict[str, list[int]] = {}
        for row, t in enumerate(items):
            by_task.setdefault(t.task_id, []).append(row)
        return cls(
            items,
            matrix.astype(np.float32),
            {task: np.asarray(rows, dtype=np.intp) for task, rows in by_task.items()},
            np.asarray([t.environment for t in items], dtype=object),
            np.asarray([t.source.value for t in items], dtype=object),
        )

    def rows(
        self, *, environment: str | None, task_id: str | None, source: Source | None
    ) -> NDArray[np.intp] | None:
        """The rows passing the filters; ``None`` for all of them."""
        if task_id is None and environment is None and source is None:
            return None
        rows = self.by_task.get(task_id, _NO_ROWS) if task_id is not None else np.arange(len(self.items))
        keep = np.ones(len(rows), dtype=bool)
        if environment is not None:
            keep &= self.environments[rows] == environment
        if source is not None:
            keep &= self.sources[rows] == Source(source).value
        return rows[keep]


_NO_ROWS: NDArray[np.intp] = np.empty(0, dtype=np.intp)
