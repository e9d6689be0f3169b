"""The LanceDB replay buffer: one table of transitions with their (state, action) embeddings.

This module opens and closes the table and reads from it; writing (``_lance_write``: one coalescing
writer task, so hundreds of concurrent episodes make few table versions), searching (``_lance_search``)
and maintenance (``_lance_maintenance``: vector index, compaction, pruning of old versions, in the
background on a schedule) live in modules of their own. See ``docs/concepts/replay-buffer.md``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
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
from dreamgym_sdk.errors import ConfigError, ReplayBufferError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.replay._arrow import (
    EMBEDDER_KEY,
    RECORD,
    VECTOR,
    pyarrow,
    sample_field,
    transitions_from_arrow,
    transitions_schema,
)
from dreamgym_sdk.replay._batching import Coalescer
from dreamgym_sdk.replay._idfilter import IdFilter
from dreamgym_sdk.replay._lance_maintenance import MaintenanceReport
from dreamgym_sdk.replay._lance_search import LanceSearch, SearchJob
from dreamgym_sdk.replay._lance_write import LanceWriting, WriteJob
from dreamgym_sdk.replay._records import (
    IN_CHUNK,
    TRANSITION_COLUMNS,
    reward_buckets,
    sql_filter,
    sql_in,
)
from dreamgym_sdk.replay.base import Embedder, ReplayStats, SearchHit
from dreamgym_sdk.replay.config import ReplayConfig
from dreamgym_sdk.types import Source, Transition

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["LanceDBReplayBuffer", "MaintenanceReport", "stored_embedder"]

_log = get_logger("dreamgym_sdk.replay")
_SCALAR_INDEXES = (
    ("id", "btree"),
    ("task_id", "btree"),
    ("episode_id", "btree"),
    ("content_hash", "btree"),
    ("environment", "bitmap"),
    ("source", "bitmap"),
)


class LanceDBReplayBuffer(LanceWriting, LanceSearch):
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
        self._writer: Coalescer[WriteJob, None] = Coalescer(
            self._write, name="replay writer", window=config.write_window_s, max_size=config.max_write_rows,
            size=lambda job: len(job.ids),
        )  # fmt: skip
        self._embedder_queue: Coalescer[list[str], NDArray[np.float32]] = Coalescer(
            self._embed_batch, name="replay embedder", max_size=4096, size=len
        )
        self._searcher: Coalescer[SearchJob, list[SearchHit]] = Coalescer(
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

    # -- reading -------------------------------------------------------------------------------------
    async def get(self, ids: Sequence[str]) -> list[Transition]:
        """The stored transitions with these ids, in the order given; unknown ids are skipped."""
        table = self._live_table()
        by_id: dict[str, Transition] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), IN_CHUNK):
            chunk = unique[start : start + IN_CHUNK]
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
        for start in range(0, len(unique), IN_CHUNK):
            chunk = unique[start : start + IN_CHUNK]
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
