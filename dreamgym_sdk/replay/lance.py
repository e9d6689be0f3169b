"""The LanceDB replay buffer: one table of transitions with their (state, action) embeddings.

Writes go through a single coalescing writer task, so hundreds of concurrent episodes make few table
versions and ids are checked and inserted without races. Maintenance (vector index, compaction, pruning
of old versions) runs in the background on a schedule. See ``docs/concepts/replay-buffer.md``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk._imports import require
from dreamgym_sdk.embeddings.cache import CachedEmbedder
from dreamgym_sdk.embeddings.factory import make_embedder
from dreamgym_sdk.errors import ConfigError, RecordValidationError, ReplayBufferError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.replay._arrow import (
    EMBEDDER_KEY,
    RECORD,
    VECTOR,
    checked_table,
    pyarrow,
    sample_field,
    transitions_from_arrow,
    transitions_schema,
    transitions_to_arrow,
    vector_array,
)
from dreamgym_sdk.replay._batching import Coalescer
from dreamgym_sdk.replay._idfilter import IdFilter
from dreamgym_sdk.replay._records import (
    TRANSITION_COLUMNS,
    dedupe_by_id,
    embedding_text,
    reward_buckets,
    sql_filter,
    sql_in,
    validate_transitions,
)
from dreamgym_sdk.replay.base import Embedder, ReplayStats, SearchHit
from dreamgym_sdk.replay.config import IndexType, ReplayConfig
from dreamgym_sdk.types import Source, Transition

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["LanceDBReplayBuffer", "MaintenanceReport", "stored_embedder"]

_log = get_logger("dreamgym_sdk.replay")
_IN_CHUNK = 5_000  # ids per `IN (...)` query
_THREAD_ROWS = 2_000  # batches at least this large are converted to Arrow in a worker thread
_ARROW_ROWS = 64  # smaller batches are validated row by row and converted by the writer, all at once
_SCALAR_INDEXES = (
    ("id", "btree"),
    ("task_id", "btree"),
    ("episode_id", "btree"),
    ("content_hash", "btree"),
    ("environment", "bitmap"),
    ("source", "bitmap"),
)


@dataclass(frozen=True, slots=True)
class _WriteJob:
    ids: list[str]
    data: Any = None
    """Large adds: an Arrow table of the rows, vectors included."""
    transitions: list[Transition] | None = None
    """Small adds: the validated transitions, converted by the writer together with the others."""
    vectors: NDArray[np.float32] | None = None


@dataclass(frozen=True, slots=True)
class _SearchJob:
    vector: NDArray[np.float32]
    k: int
    where: str | None
    nprobes: int
    """0 for an exact search."""


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one maintenance pass did."""

    rows: int
    """Rows in the table."""
    vector_index: str | None
    """``"built"``, ``"rebuilt"`` or ``None`` (unchanged)."""
    fragments_removed: int
    """Data files merged away by compaction."""
    versions_pruned: int
    """Old table versions deleted."""


class LanceDBReplayBuffer:
    """A replay buffer stored in LanceDB (embedded on local disk, object storage or LanceDB Cloud).

    ```python
    import anyio, tempfile
    from dreamgym_sdk import Source, Transition
    from dreamgym_sdk.embeddings import HashingEmbedder
    from dreamgym_sdk.replay import LanceDBReplayBuffer

    async def main() -> None:
        path = tempfile.mkdtemp()
        async with LanceDBReplayBuffer(path, embedder=HashingEmbedder()) as buffer:
            await buffer.add([Transition(task_id="t", episode_id="e", step=0, state="kitchen",
                                         action="open fridge", next_state="fridge open", reward=0.0,
                                         source=Source.REAL)])
            hits = await buffer.search("kitchen", "open fridge", k=4)
            assert hits[0].transition.action == "open fridge"

    anyio.run(main)
    ```

    Use it inside ``async with``: entering opens (or creates) the table and starts the writer task;
    leaving finishes pending writes and stops it.

    Args:
        config: a :class:`ReplayConfig`, or a local path / LanceDB URI (with defaults for the rest).
        embedder: the embedder; defaults to ``config.embedder``. It is wrapped in a
            :class:`~dreamgym_sdk.embeddings.CachedEmbedder` unless ``embed_cache_size`` is 0.
        **overrides: fields of :class:`ReplayConfig` to override.

    Raises:
        ConfigError: (on entering) the table was built with a different embedder.
    """

    def __init__(
        self,
        config: ReplayConfig | str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, ReplayConfig):
            config = (
                ReplayConfig.model_validate({**config.model_dump(), **overrides}) if overrides else config
            )
        elif config is None:
            config = ReplayConfig(**overrides)
        else:
            config = ReplayConfig.model_validate({**overrides, "uri": os.fspath(config)})
        self.config: ReplayConfig = config
        inner = embedder if embedder is not None else make_embedder(config.embedder, dim=config.embedder_dim)
        wrap = not isinstance(inner, CachedEmbedder) and (config.embed_cache_size or config.embed_cache_path)
        self.embedder: Embedder = (
            CachedEmbedder(inner, maxsize=config.embed_cache_size, path=config.embed_cache_path)
            if wrap
            else inner
        )
        self._own_cache = bool(wrap)
        self._writer: Coalescer[_WriteJob, None] = Coalescer(
            self._write, name="replay writer", window=config.write_window_s, max_size=config.max_write_rows,
            size=lambda job: len(job.ids),
        )  # fmt: skip
        self._embedder_queue: Coalescer[list[str], NDArray[np.float32]] = Coalescer(
            self._embed_batch, name="replay embedder", max_size=4096, size=len
        )
        self._searcher: Coalescer[_SearchJob, list[SearchHit]] = Coalescer(
            self._search_batch, name="replay search", max_size=64
        )
        self._db: Any = None
        self._table: Any = None
        self._schema: Any = None
        self._row_schema: Any = None  # the schema without the vector column
        self._point_columns: list[str] = [RECORD]  # what search and get read (older tables: every column)
        self._ids: IdFilter | None = None
        self._task_group: TaskGroup | None = None
        self._maintenance_lock = anyio.Lock()
        self._maintenance_pending = False
        self._paused = 0  # bulk_load() blocks in progress
        self._rows = 0
        self._writes_since_maintenance = 0
        self._rows_since_maintenance = 0
        self._vector_indexed_rows: int | None = None  # rows when the vector index was (re)built
        self._quantized = False  # whether the vector index compares quantized vectors (then: refine)
        # Ids this process wrote that the id index may not cover yet. While ``_full_id_check`` is off, the
        # dedup check asks the index only (fast_search: no scan of unindexed files) plus this set.
        self._unindexed_ids: set[str] = set()
        self._full_id_check = True
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._task_group is not None or self._closed:
            raise ReplayBufferError("a LanceDBReplayBuffer can be entered once")
        try:
            await self._open()
        except BaseException:
            self._closed = True
            if self._table is not None:
                self._table.close()
                self._table = None
            if self._db is not None:
                self._db.close()
            raise
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            await task_group.start(self._writer.run)
            await task_group.start(self._embedder_queue.run)
            await task_group.start(self._searcher.run)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish pending writes, stop the writer and close the table; idempotent.

        The worker tasks are stopped by closing their queues, not by cancelling them, so an exception
        leaving the ``async with`` block propagates as it is (not wrapped in an exception group).
        """
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._embedder_queue.close()
        self._searcher.close()
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                await task_group.__aexit__(None, None, None)
        finally:
            table, self._table = self._table, None
            db, self._db = self._db, None
            if table is not None:
                table.close()
            if db is not None:
                db.close()
            if self._own_cache and isinstance(self.embedder, CachedEmbedder):
                self.embedder.close()

    async def _open(self) -> None:
        lancedb = require("lancedb", extra="lancedb", feature="LanceDBReplayBuffer")
        cfg = self.config
        interval = (
            None
            if cfg.read_consistency_interval_s is None
            else timedelta(seconds=cfg.read_consistency_interval_s)
        )
        if cfg.read_only and _missing_local(cfg.uri):
            raise ReplayBufferError(f"no replay buffer at {cfg.uri!r} (opened read-only, so none is created)")
        self._db = db = await lancedb.connect_async(
            _connectable(cfg.uri),
            api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
            region=cfg.region,
            read_consistency_interval=interval,
            storage_options=cfg.storage_options or None,
        )
        schema = transitions_schema(self.embedder.dim, self.embedder.name)
        try:
            table = await db.open_table(cfg.table)
        except ValueError:  # not found (LanceDB reports it as ValueError): create it
            if cfg.read_only:
                raise ReplayBufferError(
                    f"no replay table {cfg.table!r} at {cfg.uri!r} (opened read-only, so none is created)"
                ) from None
            table = await db.create_table(cfg.table, schema=schema, exist_ok=True)
        self._table = table
        self._check_schema(await table.schema())
        if "sample" not in (await table.schema()).names and not cfg.read_only:
            await table.add_columns(sample_field())  # schema version 2: add the column, all null
        self._schema = await table.schema()
        pa_ = pyarrow()
        names: list[str] = self._schema.names
        self._point_columns = [RECORD] if RECORD in names else [c for c in TRANSITION_COLUMNS if c in names]
        self._row_schema = pa_.schema(
            [f for f in self._schema if f.name != VECTOR], metadata=self._schema.metadata
        )
        if not cfg.read_only:
            await self._ensure_scalar_indexes()
        self._rows = await table.count_rows()
        id_index = await table.index_stats("id_idx")
        self._full_id_check = id_index is None or id_index.num_unindexed_rows > 0
        for index in await table.list_indices():
            if VECTOR in index.columns:
                stats = await table.index_stats(index.name)
                self._vector_indexed_rows = stats.num_indexed_rows if stats else self._rows
                self._quantized = (
                    "sq" in str(index.index_type).lower() or "pq" in str(index.index_type).lower()
                )

    def _check_schema(self, schema: Any) -> None:
        metadata: dict[bytes, bytes] = schema.metadata or {}
        stored = metadata.get(EMBEDDER_KEY, b"").decode() or None
        if stored is not None and stored != self.embedder.name:
            raise ConfigError(
                f"table {self.config.table!r} at {self.config.uri!r} holds vectors of embedder {stored!r}, "
                f"not {self.embedder.name!r}: open it with that embedder, or export and re-import"
            )
        if schema.get_field_index(VECTOR) < 0:
            raise ConfigError(f"table {self.config.table!r} has no {VECTOR!r} column: not a replay table")
        dim = schema.field(VECTOR).type.list_size
        if dim != self.embedder.dim:
            raise ConfigError(f"table vectors have {dim} dimensions, the embedder makes {self.embedder.dim}")

    async def _ensure_scalar_indexes(self) -> None:
        index = require("lancedb.index", extra="lancedb", feature="LanceDBReplayBuffer")
        table = self._live_table()
        existing = {tuple(config.columns) for config in await table.list_indices()}
        for column, kind in _SCALAR_INDEXES:
            if (column,) not in existing:
                await table.create_index(column, config=index.BTree() if kind == "btree" else index.Bitmap())

    def _live_table(self) -> Any:
        if self._table is None:
            raise ReplayBufferError("the replay buffer is not open: use it inside `async with`")
        return self._table

    def _check_writable(self) -> None:
        if self.config.read_only:
            raise ReplayBufferError(f"the replay table at {self.config.uri!r} was opened read-only")

    # -- writing -------------------------------------------------------------------------------------
    async def add(self, transitions: Sequence[Transition]) -> None:
        """Store ``transitions`` (embedding their (state, action) text); durable once this returns.

        Concurrent calls are coalesced into one table write. Ids already stored are skipped, so adding
        the same transitions again is a no-op; within one call the first of a repeated id wins.

        Raises:
            RecordValidationError: a record is invalid (nothing from this call is written).
            ReplayBufferError: the buffer is not open, or the write failed.
        """
        self._check_writable()
        batch, data = await self._checked(transitions)
        if not batch:
            return
        vectors = await self._embed([embedding_text(t.state, t.action) for t in batch])
        await self._submit(batch, data, vectors)

    async def add_with_vectors(
        self, transitions: Sequence[Transition], vectors: NDArray[np.floating]
    ) -> None:
        """Store transitions with pre-computed (state, action) vectors from this buffer's embedder.

        For bulk loads and re-imports that kept their vectors. Vectors are re-normalised.

        Raises:
            RecordValidationError: a record or vector is invalid (nothing from this call is written).
        """
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.shape != (len(transitions), self.embedder.dim):
            raise RecordValidationError(
                f"expected shape {(len(transitions), self.embedder.dim)}, got {matrix.shape}",
                record="<batch>", field=VECTOR,
            )  # fmt: skip
        batch, data = await self._checked(transitions)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise RecordValidationError("contains NaN or infinity", record=transitions[bad].id, field=VECTOR)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            bad = int(np.argmin(norms[:, 0]))
            raise RecordValidationError("is all zeros", record=transitions[bad].id, field=VECTOR)
        if not batch:
            return
        if len(batch) != len(transitions):  # repeated ids: keep the first row of each
            first = {t.id: i for i, t in reversed(list(enumerate(transitions)))}
            matrix, norms = matrix[sorted(first.values())], norms[sorted(first.values())]
        await self._submit(batch, data, matrix / norms)

    async def _checked(self, transitions: Sequence[Transition]) -> tuple[list[Transition], Any]:
        """Validate a batch (fast, column-wise; the precise check names the culprit) and drop repeated
        ids; return the kept transitions and their columns without the vector. Large batches are
        converted in a worker thread, so the event loop keeps serving searches meanwhile."""
        self._live_table()
        if len(transitions) < _ARROW_ROWS:  # fixed Arrow costs dominate: check in Python, convert later
            validate_transitions(transitions)
            return dedupe_by_id(transitions), None
        if len(transitions) >= _THREAD_ROWS:
            table = await anyio.to_thread.run_sync(checked_table, transitions, self._row_schema)
        else:
            table = checked_table(transitions, self._row_schema)
        if table is None:
            validate_transitions(transitions)  # raises RecordValidationError naming record and field
            raise RecordValidationError("a value cannot be stored", record="<batch>", field="<unknown>")
        batch = dedupe_by_id(transitions)
        if len(batch) != len(transitions):
            table = checked_table(batch, self._row_schema)
        return batch, table

    async def _submit(self, batch: list[Transition], data: Any, vectors: NDArray[np.float32]) -> None:
        ids = [t.id for t in batch]
        if data is None:
            await self._writer.submit(_WriteJob(ids, transitions=batch, vectors=vectors))
            return
        data = data.append_column(self._schema.field(VECTOR), vector_array(vectors, self.embedder.dim))
        await self._writer.submit(_WriteJob(ids, data=data.select(self._schema.names)))

    async def _write(self, jobs: list[_WriteJob]) -> list[None]:
        """The writer task's batch: drop ids already stored, then append everything in one write."""
        pa_ = pyarrow()
        table = self._live_table()
        small = [job for job in jobs if job.transitions is not None]
        large = [job for job in jobs if job.transitions is None]
        tables = [job.data for job in large]
        if small:
            rows = [t for job in small for t in job.transitions or ()]
            vectors = np.concatenate([job.vectors for job in small if job.vectors is not None])
            tables.insert(0, transitions_to_arrow(rows, vectors, self._schema))
        ids = [i for job in (*small, *large) for i in job.ids]
        data = tables[0] if len(tables) == 1 else pa_.concat_tables(tables)
        keep = np.ones(len(ids), dtype=bool)
        if len(jobs) > 1:  # the same id from two concurrent adds: one wins
            seen: set[str] = set()
            for row, i in enumerate(ids):
                keep[row] = i not in seen
                seen.add(i)
        id_filter = await self._id_filter()
        maybe = np.flatnonzero(id_filter.might_contain(ids) & keep)
        if maybe.size:
            existing = await self._existing_ids([ids[row] for row in maybe])
            for row in maybe:
                keep[row] = ids[row] not in existing
        if not keep.all():
            data = data.filter(pa_.array(keep))
            ids = [i for i, k in zip(ids, keep, strict=True) if k]
        if ids:
            started_ns = time.time_ns() - 2_000_000_000  # mtime slack: fsyncing a few older files is harmless
            try:
                await table.add(data)
            except Exception as exc:
                raise ReplayBufferError(f"writing {len(ids)} transition(s) failed: {exc}") from exc
            if self.config.fsync and (root := self._local_table_dir()) is not None:
                await anyio.to_thread.run_sync(_fsync_new_files, root, started_ns)
            id_filter.add(ids)
            self._unindexed_ids.update(ids)
            self._rows += len(ids)
            self._rows_since_maintenance += len(ids)
            self._writes_since_maintenance += 1
            self._schedule_maintenance()
        return [None] * len(jobs)

    async def _id_filter(self) -> IdFilter:
        """The Bloom filter of stored ids, built from the id column on first use and when it fills up."""
        current = self._ids
        if current is not None and not current.full:
            return current
        table = self._live_table()
        rows = await table.count_rows()
        fresh = IdFilter(max(2 * rows, 1 << 16))
        reader = await table.query().select(["id"]).to_batches(max_batch_length=65_536)
        async for batch in reader:
            fresh.add(batch.column("id").to_pylist())
        self._ids = fresh
        return fresh

    async def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids already stored: a lookup in the id index plus the ids written since it was updated."""
        table = self._live_table()
        fast = not self._full_id_check
        found: set[str] = {i for i in ids if i in self._unindexed_ids} if fast else set()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            query = table.query().where(sql_in("id", chunk)).select(["id"])
            result = await (query.fast_search() if fast else query).to_arrow()
            found.update(result.column("id").to_pylist())
        return found

    def _local_table_dir(self) -> Path | None:
        uri = self.config.uri
        if uri.startswith("file://"):
            uri = uri.removeprefix("file://")
        elif "://" in uri:
            return None
        path = Path(uri) / f"{self.config.table}.lance"
        return path if path.is_dir() else None

    # -- embedding -----------------------------------------------------------------------------------
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

    # -- reading -------------------------------------------------------------------------------------
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
        job = _SearchJob(np.asarray(vector, dtype=np.float32), k, where, probes)
        return await self._searcher.submit(job)

    async def _search_batch(self, jobs: list[_SearchJob]) -> list[list[SearchHit]]:
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

    async def get(self, ids: Sequence[str]) -> list[Transition]:
        """The stored transitions with these ids, in the order given; unknown ids are skipped."""
        table = self._live_table()
        by_id: dict[str, Transition] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            result = await table.query().where(sql_in("id", chunk)).select(self._point_columns).to_arrow()
            by_id.update((t.id, t) for t in transitions_from_arrow(result))
        return [by_id[i] for i in ids if i in by_id]

    async def sample(
        self,
        n: int,
        *,
        source: Source | None = None,
        environment: str | None = None,
        seed: int | None = None,
    ) -> list[Transition]:
        """Up to ``n`` distinct transitions drawn uniformly (reproducible for a ``seed`` and content)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        table = self._live_table()
        query = table.query().select(["id"])
        where = sql_filter(source=source, environment=environment)
        if where is not None:
            query = query.where(where)
        ids = sorted((await query.to_arrow()).column("id").to_pylist())
        if not ids or n == 0:
            return []
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
        return await self.get([ids[i] for i in chosen])

    async def count(
        self,
        *,
        source: Source | None = None,
        environment: str | None = None,
        task_id: str | None = None,
    ) -> int:
        """Number of stored transitions matching the filters."""
        where = sql_filter(source=source, environment=environment, task_id=task_id)
        return await self._live_table().count_rows(where)

    async def stats(self) -> ReplayStats:
        """Counts by source, environment and reward, and the number of successful transitions."""
        pc = require("pyarrow.compute", extra="lancedb", feature="replay statistics")
        table = self._live_table()
        data = await table.query().select(["source", "environment", "reward", "success"]).to_arrow()

        def counts(column: str) -> dict[Any, int]:
            pairs = pc.value_counts(data.column(column)).to_pylist()
            return {p["values"]: p["counts"] for p in pairs}

        if data.num_rows == 0:
            return ReplayStats(total=0)
        return ReplayStats(
            total=data.num_rows,
            by_source=dict(sorted(counts("source").items())),
            by_environment=dict(sorted(counts("environment").items())),
            by_reward=reward_buckets(counts("reward")),
            successes=int(pc.sum(data.column("success")).as_py() or 0),
        )

    async def contains_content(self, hashes: Sequence[str]) -> set[str]:
        """Which of these content hashes (see :func:`~dreamgym_sdk.replay.content_hash`) are stored."""
        table = self._live_table()
        found: set[str] = set()
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            result = (
                await table.query().where(sql_in("content_hash", chunk)).select(["content_hash"]).to_arrow()
            )
            found.update(result.column("content_hash").to_pylist())
        return found

    async def scan(
        self,
        *,
        batch_size: int = 1024,
        source: Source | None = None,
        environment: str | None = None,
    ) -> AsyncIterator[list[Transition]]:
        """Iterate over the stored transitions matching the filters, in batches of up to ``batch_size``."""
        async for batch in self.scan_arrow(batch_size=batch_size, source=source, environment=environment):
            yield transitions_from_arrow(batch)

    async def scan_arrow(
        self,
        *,
        batch_size: int = 1024,
        source: Source | None = None,
        environment: str | None = None,
        vectors: bool = False,
    ) -> AsyncIterator[Any]:
        """Iterate over the matching rows as Arrow record batches (the transition columns, plus ``vector``
        when ``vectors`` is true)."""
        table = self._live_table()
        columns = [c for c in TRANSITION_COLUMNS if c in self._schema.names]
        columns += [VECTOR] if vectors else []
        query = table.query().select(columns)
        where = sql_filter(source=source, environment=environment)
        if where is not None:
            query = query.where(where)
        reader = await query.to_batches(max_batch_length=batch_size)
        async for batch in reader:
            if batch.num_rows:
                yield batch

    # -- deleting and maintenance --------------------------------------------------------------------
    async def delete(
        self,
        where: str | None = None,
        *,
        ids: Sequence[str] | None = None,
        environment: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        source: Source | None = None,
    ) -> int:
        """Delete the matching transitions; return how many were deleted.

        Args:
            where: a LanceDB SQL predicate over the table's columns (e.g. ``"reward < 0.5"``); combined
                with the keyword filters by AND. ``where="true"`` deletes everything.
            ids: only these ids.
            environment: only this environment.
            task_id: only this task.
            episode_id: only this episode.
            source: only this source.

        Raises:
            ValueError: no filter was given.
        """
        self._check_writable()
        parts = [
            p
            for p in (
                where,
                sql_filter(
                    ids=ids, environment=environment, task_id=task_id, episode_id=episode_id, source=source
                ),
            )
            if p
        ]
        if not parts:
            raise ValueError("delete() needs a filter; pass where='true' to delete everything")
        predicate = " AND ".join(f"({p})" for p in parts)
        table = self._live_table()
        async with self._maintenance_lock:  # compaction and delete rewrite the same files
            try:
                result = await table.delete(predicate)
            except Exception as exc:
                raise ReplayBufferError(f"delete({predicate!r}) failed: {exc}") from exc
        deleted = int(result.num_deleted_rows)
        self._rows = max(0, self._rows - deleted)
        if deleted:
            self._full_id_check = True  # deleted ids may still be in _unindexed_ids: scan until maintenance
        return deleted

    async def build_index(self) -> None:
        """Build (or retrain) the ANN vector index now, whatever the table's size; e.g. after a bulk import.

        Search stays exact (brute force) until an index exists; maintenance keeps it up to date afterwards.
        """
        self._check_writable()
        table = self._live_table()
        async with self._maintenance_lock:
            await self._build_vector_index(await table.count_rows())

    async def compact(self) -> MaintenanceReport:
        """Run maintenance now: build or retrain the vector index if due, compact data files, bring every
        index up to date and prune versions older than ``prune_older_than_s``."""
        self._check_writable()
        return await self._maintain()

    @contextlib.asynccontextmanager
    async def bulk_load(self) -> AsyncGenerator[None]:
        """Pause background maintenance (compaction, index builds) for a bulk load; run it once after.

        Rebuilding the index and compacting while a million rows stream in costs more than doing it once
        at the end. The import functions use this. Searches during the block stay correct (new rows are
        searched exactly until the index covers them).
        """
        self._check_writable()
        self._live_table()
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
        if not self._paused and not self._closed:
            await self._maintain()

    def _schedule_maintenance(self) -> None:
        if self._paused:
            return
        cfg = self.config
        due = (
            self._writes_since_maintenance >= cfg.optimize_every_writes
            or self._rows_since_maintenance >= cfg.optimize_every_rows
            or (self._vector_indexed_rows is None and self._rows >= cfg.index_threshold)
        )
        if due and not self._maintenance_pending and self._task_group is not None and not self._closed:
            self._maintenance_pending = True
            self._task_group.start_soon(self._background_maintenance, name="dreamgym-replay-maintenance")

    async def _background_maintenance(self) -> None:
        try:
            await self._maintain()
        except Exception as exc:  # maintenance is an optimisation: log and retry on the next schedule
            _log.warning("replay maintenance failed", error=str(exc))
        finally:
            self._maintenance_pending = False
        self._paused = 0  # bulk_load() blocks in progress

    async def _maintain(self) -> MaintenanceReport:
        table = self._live_table()
        async with self._maintenance_lock:
            self._writes_since_maintenance = 0
            self._rows_since_maintenance = 0
            written_before = set(self._unindexed_ids)
            # Compact first: an IVF index trained on compacted files was measured to recall better than
            # one remapped by a later compaction.
            stats = await table.optimize(cleanup_older_than=timedelta(seconds=self.config.prune_older_than_s))
            # Every row committed before optimize() started is in the id index now; deletes wait for this
            # lock, so no delete happened meanwhile.
            self._unindexed_ids -= written_before
            self._full_id_check = False
            rows = await table.count_rows()
            action = None
            if rows >= self.config.index_threshold and (
                self._vector_indexed_rows is None
                or rows >= self.config.reindex_growth * self._vector_indexed_rows
            ):
                action = "built" if self._vector_indexed_rows is None else "rebuilt"
                await self._build_vector_index(rows)
        report = MaintenanceReport(
            rows=rows,
            vector_index=action,
            fragments_removed=int(stats.compaction.fragments_removed),
            versions_pruned=int(stats.prune.old_versions_removed),
        )
        _log.debug("replay maintenance", **{k: getattr(report, k) for k in report.__slots__})
        return report

    async def _build_vector_index(self, rows: int) -> None:
        index = require("lancedb.index", extra="lancedb", feature="LanceDBReplayBuffer")
        partitions = max(1, min(rows // self.config.index_rows_per_partition, int(math.sqrt(rows)) * 4))
        config: Any
        kind = self.config.index_type
        if kind is IndexType.IVF_HNSW_SQ:
            config = index.HnswSq(distance_type="cosine", num_partitions=max(1, rows // 100_000))
        elif kind is IndexType.IVF_SQ:
            config = index.IvfSq(distance_type="cosine", num_partitions=partitions)
        else:
            config = index.IvfFlat(distance_type="cosine", num_partitions=partitions)
        await self._live_table().create_index(VECTOR, config=config, replace=True)
        self._vector_indexed_rows = rows
        self._quantized = kind is not IndexType.IVF_FLAT
        _log.info("replay vector index built", rows=rows, index=self.config.index_type.value)

    # -- introspection -------------------------------------------------------------------------------
    @property
    def table(self) -> Any:
        """The underlying LanceDB table (for advanced queries; write through the buffer)."""
        return self._live_table()

    @property
    def vector_indexed(self) -> bool:
        """Whether the ANN vector index exists (otherwise search is exact)."""
        return self._vector_indexed_rows is not None

    async def version(self) -> int:
        """The table's current version (every write makes one)."""
        return await self._live_table().version()

    def __repr__(self) -> str:
        cfg = self.config
        return f"LanceDBReplayBuffer(uri={cfg.uri!r}, table={cfg.table!r}, embedder={self.embedder.name!r})"


def _fsync_new_files(root: Path, since_ns: int) -> None:
    """Flush (``fsync``) the files of a Lance table written since ``since_ns``, then their directories."""
    for directory in (root / "data", root / "_versions", root / "_transactions", root):
        if not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            if entry.is_file() and entry.stat().st_mtime_ns >= since_ns:
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def stored_embedder(config: ReplayConfig) -> tuple[str, int] | None:
    """The ``(name, dim)`` of the embedder an existing table was built with; ``None`` if there is no table.
    Reads only: a missing local directory is not created."""
    if _missing_local(config.uri):
        return None
    lancedb = require("lancedb", extra="lancedb", feature="LanceDBReplayBuffer")
    db = await lancedb.connect_async(
        _connectable(config.uri),
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        region=config.region,
        storage_options=config.storage_options or None,
    )
    try:
        try:
            table = await db.open_table(config.table)
        except ValueError:
            return None
        schema = await table.schema()
        table.close()
    finally:
        db.close()
    metadata: dict[bytes, bytes] = schema.metadata or {}
    name = metadata.get(EMBEDDER_KEY, b"").decode()
    if not name or schema.get_field_index(VECTOR) < 0:
        return None
    dim: int = schema.field(VECTOR).type.list_size
    return name, dim


def _connectable(uri: str) -> str:
    """``uri`` as LanceDB should be given it: a local path made absolute (LanceDB takes a bare ``db`` for
    a LanceDB Cloud database and asks for an API key)."""
    return uri if "://" in uri else str(Path(uri).expanduser().absolute())


def _missing_local(uri: str) -> bool:
    """Whether ``uri`` is a local path with no directory there (connecting would create one)."""
    return "://" not in uri and not Path(uri).is_dir()
