"""Import and export a replay buffer: JSONL (see :mod:`dreamgym_sdk.replay.jsonl`), Parquet and Hugging
Face ``datasets``.

Imports validate the whole input before writing anything, so a bad record leaves the buffer untouched.
Files are read twice (once to validate, once to write) to keep memory bounded; the writes are idempotent
(ids are deduplicated), so an import interrupted half way can simply be run again.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.replay._records import TRANSITION_COLUMNS
from dreamgym_sdk.replay.base import ReplayBuffer
from dreamgym_sdk.replay.jsonl import parse_jsonl_line, parse_record
from dreamgym_sdk.types import Source, Transition

__all__ = [
    "ImportReport",
    "Progress",
    "export_jsonl",
    "export_parquet",
    "import_file",
    "import_hf_dataset",
    "import_jsonl",
    "import_parquet",
    "to_hf_dataset",
]

_IN_FLIGHT = 2

Progress = Callable[[int, int], None]
"""Called after each written batch with ``(transitions_done, transitions_total)``."""

_EMBEDDER_KEY = b"dreamgym.embedder"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import read and stored."""

    records: int
    """Lines or rows read (blank lines excluded)."""
    transitions: int
    """Transitions parsed from them."""
    added: int
    """Rows the buffer grew by (transitions already stored are not added again)."""


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def _iter_jsonl(
    path: Path, source: Source, environment: str | None
) -> Iterator[tuple[int, list[Transition]]]:
    with _open_text(path, "r") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, parse_jsonl_line(line, number=number, source=source, environment=environment)


async def _write_batches(
    buffer: ReplayBuffer,
    batches: AsyncIterator[list[Transition]] | AsyncIterator[tuple[list[Transition], Any]],
    total: int,
    progress: Progress | None,
) -> int:
    """Add the batches with up to two ``add`` calls in flight, so parsing the next batch overlaps the
    write of the previous one. Items are transition lists, or ``(transitions, vectors)`` pairs.

    A LanceDB buffer runs its maintenance once at the end (``bulk_load``), not during the import.
    """
    before = await buffer.count()
    done = 0
    in_flight = anyio.Semaphore(_IN_FLIGHT)

    async def add(batch: list[Transition], vectors: Any) -> None:
        nonlocal done
        try:
            if vectors is None:
                await buffer.add(batch)
            else:
                await buffer.add_with_vectors(batch, vectors)  # type: ignore[attr-defined]
        finally:
            in_flight.release()
        done += len(batch)
        if progress is not None:
            progress(done, total)

    bulk_load: Any = getattr(buffer, "bulk_load", None)
    paused = bulk_load() if bulk_load is not None else contextlib.nullcontext()
    async with paused, anyio.create_task_group() as tg:
        async for item in batches:
            batch, vectors = item if isinstance(item, tuple) else (item, None)
            await in_flight.acquire()
            tg.start_soon(add, batch, vectors)
    return await buffer.count() - before


async def import_jsonl(
    buffer: ReplayBuffer,
    path: str | Path,
    *,
    source: Source = Source.REAL,
    environment: str | None = None,
    batch_size: int = 2_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a JSONL file of transitions or episodes (``.jsonl`` or ``.jsonl.gz``).

    Args:
        buffer: where to store them.
        path: the file.
        source: the source of records that do not name one (offline trajectories are real).
        environment: the environment of records that do not name one.
        batch_size: transitions per ``add``.
        progress: called after each batch with ``(done, total)``.

    Raises:
        RecordValidationError: naming the line and field of the first bad record; nothing is written.
    """
    file = Path(path)

    def validate() -> tuple[int, int]:
        records = transitions = 0
        for _, parsed in _iter_jsonl(file, source, environment):
            records += 1
            transitions += len(parsed)
        return records, transitions

    records, total = await anyio.to_thread.run_sync(validate)

    async def batches() -> AsyncIterator[list[Transition]]:
        pending: list[Transition] = []
        for _, parsed in _iter_jsonl(file, source, environment):
            pending.extend(parsed)
            if len(pending) >= batch_size:
                yield pending
                pending = []
                await anyio.lowlevel.checkpoint()
        if pending:
            yield pending

    added = await _write_batches(buffer, batches(), total, progress)
    return ImportReport(records=records, transitions=total, added=added)


async def export_jsonl(
    buffer: ReplayBuffer,
    path: str | Path,
    *,
    source: Source | None = None,
    environment: str | None = None,
) -> int:
    """Write the matching transitions to a JSONL file, one transition per line; return how many.

    The output is the transition-line format, so :func:`import_jsonl` reads it back unchanged.
    """
    file = Path(path)
    written = 0
    with _open_text(file, "w") as handle:
        async for batch in buffer.scan(source=source, environment=environment):
            handle.write("".join(t.model_dump_json() + "\n" for t in batch))
            written += len(batch)
    return written


def _pyarrow() -> Any:
    return require("pyarrow", extra="lancedb", feature="Parquet import and export")


def _row_to_record(row: dict[str, Any]) -> dict[str, Any]:
    """A flat row (``provenance_*`` columns) as a nested transition record; other columns are dropped."""
    record = {k: v for k, v in row.items() if k in TRANSITION_COLUMNS and not k.startswith("provenance_")}
    sample = record.pop("sample", None)
    if sample is not None:  # stored as JSON text in flat files
        record["sample"] = json.loads(sample) if isinstance(sample, str) else sample
    provenance = {k.removeprefix("provenance_"): v for k, v in row.items() if k.startswith("provenance_")}
    provenance = {k: v for k, v in provenance.items() if v is not None}
    if "retrieved_ids" in provenance:
        provenance["retrieved_ids"] = tuple(provenance["retrieved_ids"])
    if provenance:
        record["provenance"] = provenance
    return record


async def export_parquet(
    buffer: ReplayBuffer,
    path: str | Path,
    *,
    source: Source | None = None,
    environment: str | None = None,
    vectors: bool = False,
) -> int:
    """Write the matching transitions to a Parquet file (provenance flattened to ``provenance_*``
    columns); return how many.

    Args:
        buffer: the buffer to read.
        path: the Parquet file to write.
        source: only transitions from this source (``None``: any).
        environment: only transitions of this environment (``None``: any).
        vectors: also write the ``vector`` column (LanceDB buffers only) and the embedder's name, so a
            buffer with the same embedder re-imports without re-embedding.
    """
    pa_ = _pyarrow()
    pq = require("pyarrow.parquet", extra="lancedb", feature="Parquet export")
    from dreamgym_sdk.replay._arrow import transitions_schema, transitions_to_arrow

    writer: Any = None
    written = 0
    try:
        if vectors:
            scan_arrow = getattr(buffer, "scan_arrow", None)
            if scan_arrow is None:
                raise TypeError(f"{type(buffer).__name__} cannot export vectors")
            async for batch in scan_arrow(source=source, environment=environment, vectors=True):
                table = pa_.Table.from_batches([batch])
                if writer is None:
                    metadata = {_EMBEDDER_KEY: buffer.embedder.name.encode()}  # type: ignore[attr-defined]
                    writer = pq.ParquetWriter(str(path), table.schema.with_metadata(metadata))
                writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
                written += table.num_rows
        else:
            schema = transitions_schema(None)
            writer = pq.ParquetWriter(str(path), _flat_schema(schema))
            async for batch in buffer.scan(source=source, environment=environment):
                table = transitions_to_arrow(batch, None, schema).select(list(TRANSITION_COLUMNS))
                writer.write_table(table)
                written += table.num_rows
        if writer is None:  # vectors requested but nothing matched: still write an empty file
            writer = pq.ParquetWriter(str(path), _flat_schema(transitions_schema(None)))
    finally:
        if writer is not None:
            writer.close()
    return written


def _flat_schema(schema: Any) -> Any:
    return _pyarrow().schema([schema.field(name) for name in TRANSITION_COLUMNS])


def _rows_to_transitions(
    rows: list[dict[str, Any]], first_row: int, source: Source, environment: str | None
) -> list[Transition]:
    out: list[Transition] = []
    for offset, row in enumerate(rows):
        out.extend(
            parse_record(
                _row_to_record(row),
                record=f"row {first_row + offset}",
                source=source,
                environment=environment,
            )
        )
    return out


async def import_parquet(
    buffer: ReplayBuffer,
    path: str | Path,
    *,
    source: Source = Source.REAL,
    environment: str | None = None,
    batch_size: int = 2_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a Parquet file with the transition columns (as written by :func:`export_parquet`).

    If the file has a ``vector`` column written by the same embedder as the buffer's (and the buffer
    accepts vectors), the vectors are reused instead of re-embedding.

    Raises:
        RecordValidationError: naming the row and field of the first bad record; nothing is written.
    """
    pq = require("pyarrow.parquet", extra="lancedb", feature="Parquet import")
    import numpy as np

    file = pq.ParquetFile(str(path))
    metadata: dict[bytes, bytes] = file.schema_arrow.metadata or {}
    embedder = getattr(buffer, "embedder", None)
    reuse_vectors = (
        "vector" in file.schema_arrow.names
        and hasattr(buffer, "add_with_vectors")
        and embedder is not None
        and metadata.get(_EMBEDDER_KEY, b"").decode() == embedder.name
    )

    def iter_batches() -> Iterator[tuple[int, Any]]:
        first = 0
        for batch in file.iter_batches(batch_size=batch_size):
            yield first, batch
            first += batch.num_rows

    def validate() -> int:
        total = 0
        for first, batch in iter_batches():
            total += len(
                _rows_to_transitions(
                    batch.drop_columns(_extra(batch)).to_pylist(), first, source, environment
                )
            )
        return total

    total = await anyio.to_thread.run_sync(validate)

    async def batches() -> AsyncIterator[tuple[list[Transition], Any]]:
        for first, batch in iter_batches():
            rows = batch.drop_columns(_extra(batch)).to_pylist()
            transitions = _rows_to_transitions(rows, first, source, environment)
            vectors = None
            if reuse_vectors:  # one transition per row here, in order
                vectors = np.asarray(batch.column("vector").to_pylist(), dtype=np.float32)
            yield transitions, vectors
            await anyio.lowlevel.checkpoint()

    added = await _write_batches(buffer, batches(), total, progress)
    return ImportReport(records=file.metadata.num_rows, transitions=total, added=added)


def _extra(batch: Any) -> list[str]:
    return [name for name in batch.schema.names if name not in TRANSITION_COLUMNS]


async def import_file(
    buffer: ReplayBuffer,
    path: str | Path,
    *,
    source: Source = Source.REAL,
    environment: str | None = None,
    batch_size: int = 2_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a ``.jsonl``/``.jsonl.gz``/``.json`` or ``.parquet`` file, chosen by its suffix, in writes of
    ``batch_size`` transitions."""
    file = Path(path)
    suffixes = "".join(file.suffixes[-2:]).lower()
    options: dict[str, Any] = {"source": source, "environment": environment, "batch_size": batch_size}
    if file.suffix.lower() == ".parquet":
        return await import_parquet(buffer, file, progress=progress, **options)
    if suffixes.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json")):
        return await import_jsonl(buffer, file, progress=progress, **options)
    raise ValueError(f"cannot tell the format of {file.name!r}: use .jsonl, .jsonl.gz or .parquet")


async def to_hf_dataset(
    buffer: ReplayBuffer, *, source: Source | None = None, environment: str | None = None
) -> Any:
    """The matching transitions as a Hugging Face ``datasets.Dataset`` (provenance flattened to
    ``provenance_*`` columns), held in memory."""
    datasets = require("datasets", extra="train", feature="Hugging Face datasets export")
    pa_ = _pyarrow()
    from dreamgym_sdk.replay._arrow import transitions_schema, transitions_to_arrow

    schema = transitions_schema(None)
    tables = [
        transitions_to_arrow(batch, None, schema).select(list(TRANSITION_COLUMNS))
        async for batch in buffer.scan(source=source, environment=environment)
    ]
    table = pa_.concat_tables(tables) if tables else _flat_schema(schema).empty_table()
    return datasets.Dataset(table)


async def import_hf_dataset(
    buffer: ReplayBuffer,
    dataset: Any,
    *,
    source: Source = Source.REAL,
    environment: str | None = None,
    batch_size: int = 2_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a ``datasets.Dataset`` whose rows are transition records (flat, as :func:`to_hf_dataset`
    writes, or nested ``provenance``) or episode records (with a ``transitions`` list)."""

    def rows(start: int, stop: int) -> list[dict[str, Any]]:
        chunk = dataset[start:stop]
        return [dict(zip(chunk, values, strict=True)) for values in zip(*chunk.values(), strict=True)]

    def parse(start: int) -> list[Transition]:
        out: list[Transition] = []
        for offset, row in enumerate(rows(start, start + batch_size)):
            record = row if "transitions" in row or "provenance" in row else _row_to_record(row)
            out.extend(
                parse_record(record, record=f"row {start + offset}", source=source, environment=environment)
            )
        return out

    n = len(dataset)
    total = sum(len(parse(start)) for start in range(0, n, batch_size))

    async def batches() -> AsyncIterator[list[Transition]]:
        for start in range(0, n, batch_size):
            yield parse(start)

    added = await _write_batches(buffer, batches(), total, progress)
    return ImportReport(records=n, transitions=total, added=added)
