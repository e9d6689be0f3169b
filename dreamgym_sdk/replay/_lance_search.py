"""Searching a :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer`: concurrent queries with the same filter
become one multi-vector LanceDB query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.replay._arrow import transitions_from_arrow
from dreamgym_sdk.replay._batching import Coalescer
from dreamgym_sdk.replay._lance_state import LanceTableState
from dreamgym_sdk.replay._records import embedding_text, sql_filter
from dreamgym_sdk.replay.base import SearchHit
from dreamgym_sdk.types import Source

__all__ = ["LanceSearch", "SearchJob"]


@dataclass(frozen=True, slots=True)
class SearchJob:
    """One query waiting for the search task."""

    vector: NDArray[np.float32]
    k: int
    where: str | None
    nprobes: int
    """0 for an exact search."""


class LanceSearch(LanceTableState):
    """The reading side of :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer` that finds neighbours."""

    _searcher: Coalescer[SearchJob, list[SearchHit]]
    _point_columns: list[str]
    """What search and get read (older tables: every column)."""

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
        """The ``k`` stored transitions most similar to (``state``, ``action``), best first.

        Similarity is the cosine of the embeddings of ``embedding_text(state, action)``. Only real
        transitions are searched unless ``source`` says otherwise (``None``: any source).
        """
        vector = (await self._embed([embedding_text(state, action)]))[0]
        return await self.search_vector(vector, k=k, environment=environment, task_id=task_id, source=source)

    async def search_vector(
        self,
        vector: NDArray[np.floating] | Sequence[float],
        *,
        k: int = 4,
        environment: str | None = None,
        task_id: str | None = None,
        source: Source | None = Source.REAL,
        exact: bool = False,
        nprobes: int | None = None,
    ) -> list[SearchHit]:
        """Like :meth:`search`, for a query vector from this buffer's embedder.

        Args:
            vector: the query vector.
            k: how many transitions to return at most.
            environment: only transitions of this environment (``None``: any).
            task_id: only transitions of this task (``None``: any).
            source: only transitions from this source (``None``: any).
            exact: bypass the ANN index (exact brute-force search, for recall measurements).
            nprobes: IVF partitions to search, overriding ``config.nprobes`` (recall versus latency).
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        self._live_table()
        where = sql_filter(environment=environment, task_id=task_id, source=source)
        probes = 0 if exact else nprobes or self.config.nprobes
        job = SearchJob(np.asarray(vector, dtype=np.float32), k, where, probes)
        return await self._searcher.submit(job)

    async def _search_batch(self, jobs: list[SearchJob]) -> list[list[SearchHit]]:
        """The search task's batch: concurrent queries with the same filter and settings become one
        multi-vector LanceDB query (one scan or index pass for all of them; measured 3-10x faster than
        the same queries run concurrently)."""
        groups: dict[tuple[int, str | None, int], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault((job.k, job.where, job.nprobes), []).append(i)
        out: list[list[SearchHit]] = [[] for _ in jobs]
        for (k, where, probes), members in groups.items():
            result = await self._vector_query([jobs[i].vector for i in members], k, where, probes)
            rows = result.column("query_index").to_pylist() if "query_index" in result.schema.names else None
            hits = self._hits(result)
            for row, hit in enumerate(hits):
                out[members[rows[row] if rows is not None else 0]].append(hit)
            for i in members:
                out[i].sort(key=lambda h: -h.score)
                if probes and where is not None and len(out[i]) < k and self._vector_indexed_rows is not None:
                    # A selective filter can leave fewer than k matches in the probed partitions: search the
                    # matching rows exactly instead (cheap, since they are few).
                    out[i] = self._hits(await self._vector_query([jobs[i].vector], k, where, 0))
        return out

    async def _vector_query(
        self, vectors: list[NDArray[np.float32]], k: int, where: str | None, probes: int
    ) -> Any:
        query = (
            self._live_table()
            .query()
            .nearest_to(vectors if len(vectors) > 1 else vectors[0])
            .distance_type("cosine")
            .limit(k)
            .select([*self._point_columns, "_distance"])
        )
        if where is not None:
            query = query.where(where)
        if not probes:
            query = query.bypass_vector_index()
        elif self._vector_indexed_rows is not None:
            query = query.nprobes(probes)
            if self._quantized and self.config.refine_factor:
                query = query.refine_factor(self.config.refine_factor)
        return await query.to_arrow()

    @staticmethod
    def _hits(result: Any) -> list[SearchHit]:
        distances: list[float] = result.column("_distance").to_pylist()
        return [
            SearchHit(t, 1.0 - float(d))
            for t, d in zip(transitions_from_arrow(result), distances, strict=True)
        ]
