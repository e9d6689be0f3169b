"""Maintenance of a :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer`: the vector index, compaction and
pruning of old versions, in the background on a schedule or on request."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.replay._arrow import VECTOR
from dreamgym_sdk.replay._lance_state import LanceTableState
from dreamgym_sdk.replay.config import IndexType

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["LanceMaintenance", "MaintenanceReport"]

_log = get_logger("dreamgym_sdk.replay")


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


class LanceMaintenance(LanceTableState):
    """The maintenance side of :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer`."""

    _task_group: TaskGroup | None
    _maintenance_lock: anyio.Lock
    _maintenance_pending: bool
    _paused: int
    """``bulk_load()`` blocks in progress."""
    _writes_since_maintenance: int
    _rows_since_maintenance: int
    _unindexed_ids: set[str]
    _full_id_check: bool

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
