"""Writing to a :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer`: validation, then one coalescing writer
task, so hundreds of concurrent episodes make few table versions, and ids are checked (a Bloom filter,
then the id index) and inserted without races; durable (``fsync``) once ``add`` returns."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.errors import RecordValidationError, ReplayBufferError
from dreamgym_sdk.replay._arrow import VECTOR, checked_table, pyarrow, transitions_to_arrow, vector_array
from dreamgym_sdk.replay._batching import Coalescer
from dreamgym_sdk.replay._idfilter import IdFilter
from dreamgym_sdk.replay._lance_maintenance import LanceMaintenance
from dreamgym_sdk.replay._records import IN_CHUNK, dedupe_by_id, embedding_text, sql_in, validate_transitions
from dreamgym_sdk.types import Transition

__all__ = ["LanceWriting", "WriteJob"]

_THREAD_ROWS = 2_000  # batches at least this large are converted to Arrow in a worker thread
_ARROW_ROWS = 64  # smaller batches are validated row by row and converted by the writer, all at once


@dataclass(frozen=True, slots=True)
class WriteJob:
    """One ``add`` waiting for the writer task."""

    ids: list[str]
    data: Any = None
    """Large adds: an Arrow table of the rows, vectors included."""
    transitions: list[Transition] | None = None
    """Small adds: the validated transitions, converted by the writer together with the others."""
    vectors: NDArray[np.float32] | None = None


class LanceWriting(LanceMaintenance):
    """The writing side of :class:`~dreamgym_sdk.replay.LanceDBReplayBuffer` (each write may schedule
    maintenance)."""

    _writer: Coalescer[WriteJob, None]
    _schema: Any
    _row_schema: Any
    """The schema without the vector column."""
    _ids: IdFilter | None

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
            await self._writer.submit(WriteJob(ids, transitions=batch, vectors=vectors))
            return
        data = data.append_column(self._schema.field(VECTOR), vector_array(vectors, self.embedder.dim))
        await self._writer.submit(WriteJob(ids, data=data.select(self._schema.names)))

    async def _write(self, jobs: list[WriteJob]) -> list[None]:
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
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
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
