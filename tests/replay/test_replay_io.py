"""Import and export: JSONL (both line kinds), Parquet (with and without vectors), Hugging Face datasets;
validation names the record and field and writes nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import LanceFactory
from replay_helpers import transition

from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.errors import RecordValidationError
from dreamgym_sdk.replay import (
    InMemoryReplayBuffer,
    export_jsonl,
    export_parquet,
    import_file,
    import_hf_dataset,
    import_jsonl,
    import_parquet,
    parse_record,
    to_hf_dataset,
)
from dreamgym_sdk.testing.replay import example_transitions
from dreamgym_sdk.types import Episode, Source, Task, Transition


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


async def test_jsonl_round_trip(make_lance: LanceFactory, tmp_path: Path) -> None:
    data = example_transitions()
    async with make_lance() as source, make_lance() as target:
        await source.add(data)
        assert await export_jsonl(source, tmp_path / "out.jsonl") == len(data)
        seen: list[tuple[int, int]] = []
        report = await import_jsonl(
            target, tmp_path / "out.jsonl", batch_size=5, progress=lambda d, t: seen.append((d, t))
        )
        assert (report.records, report.transitions, report.added) == (len(data), len(data), len(data))
        assert seen[-1] == (len(data), len(data)) and len(seen) == 3
        assert sorted(await target.get([t.id for t in data]), key=lambda t: t.id) == data
        again = await import_jsonl(target, tmp_path / "out.jsonl")  # idempotent
        assert again.added == 0


async def test_episode_lines(make_lance: LanceFactory, tmp_path: Path) -> None:
    task = Task(id="task-7", instruction="make tea", environment="kitchen")
    episode = Episode(
        task=task, source=Source.REAL, initial_state="a kettle",
        transitions=(transition(1, episode="ep-x", task_id="task-7", environment="kitchen"),),
    )  # fmt: skip
    lines = [
        {
            "episode_id": "ep-1",
            "instruction": "open the door",
            "environment": "house",
            "initial_state": "a closed door",
            "transitions": [
                {"action": "pull door", "next_state": "still closed", "reward": 0},
                {"action": "push door", "next_state": "the door is open", "reward": 1, "terminated": True,
                 "success": True, "reasoning": "doors open inwards"},
            ],
        },
        "",
        episode.model_dump_json(),
        {"task_id": "t9", "source": "synthetic", "transitions": [
            {"state": "s0", "action": "a", "next_state": "s1", "reward": 0.5, "step": 4}]},
    ]  # fmt: skip
    path = write_lines(tmp_path / "episodes.jsonl", lines)
    async with make_lance() as buffer:
        report = await import_jsonl(buffer, path)
        assert (report.records, report.transitions) == (3, 4)
        stored = {t.episode_id: t for batch in [b async for b in buffer.scan()] for t in batch if t.step == 1}
        second = stored["ep-1"]
        assert second.state == "still closed"  # the previous next_state
        assert (second.environment, second.reward, second.success, second.source) == (
            "house",
            1.0,
            True,
            Source.REAL,
        )
        assert await buffer.count(task_id="task-7") == 1
        assert await buffer.count(source=Source.SYNTHETIC) == 1
        assert (await import_jsonl(buffer, path)).added == 0  # derived ids: re-import is a no-op


@pytest.mark.parametrize(
    ("line", "field", "record"),
    [
        ('{"task_id": "t", "episode_id": "e", "step": 0, "state": "s", "action": "a", "next_state": "n"}',
         "reward", "line 2"),
        ('{"id": "x1", "task_id": "t", "episode_id": "e", "step": -1, "state": "s", "action": "a", '
         '"next_state": "n", "reward": 0}', "step", "line 2 (id x1)"),
        ('{"task_id": "t", "episode_id": "e", "step": 0, "state": "s", "action": "a", "next_state": "n", '
         '"reward": NaN}', "reward", "line 2"),
        ('{"episode_id": "e9", "task_id": "t", "initial_state": "s", "transitions": [{"action": "a", '
         '"next_state": "n", "reward": 0}, {"action": "b", "next_state": "m", "reward": "lots"}]}',
         "transitions[1].reward", "line 2 (episode e9)"),
        ('{"episode_id": "e9", "task_id": "t", "transitions": [{"action": "a", "next_state": "n", '
         '"reward": 0}]}', "transitions[0].state", "line 2 (episode e9)"),
        ('{"episode_id": "e9", "transitions": [], "colour": "red"}', "colour", "line 2"),
        ('{"task_id": "t", "episode_id": "e", "step": 0, "state": "s", "action": "a", "next_state": "n", '
         '"reward": 0, "colour": "red"}', "colour", "line 2"),
        ("{not json", "<json>", "line 2"),
        ("[1, 2]", "<record>", "line 2"),
    ],
)  # fmt: skip
async def test_a_bad_line_is_named_and_nothing_is_written(
    make_lance: LanceFactory, tmp_path: Path, line: str, field: str, record: str
) -> None:
    good = transition(1).model_dump_json()
    path = write_lines(tmp_path / "bad.jsonl", [good, line, transition(2).model_dump_json()])
    async with make_lance() as buffer:
        await buffer.add([transition(50)])
        version = await buffer.version()
        with pytest.raises(RecordValidationError) as info:
            await import_jsonl(buffer, path)
        assert info.value.field == field
        assert info.value.record == record
        assert await buffer.count() == 1
        assert await buffer.version() == version


def test_parse_record_defaults() -> None:
    [t] = parse_record(
        {
            "task_id": "t",
            "episode_id": "e",
            "step": 3,
            "state": "s",
            "action": "a",
            "next_state": "n",
            "reward": 1,
        },
        environment="lab",
    )
    assert (t.source, t.environment, t.step) == (Source.REAL, "lab", 3)
    assert t.id == parse_record({**t.model_dump(exclude={"id"}), "source": "real"})[0].id  # derived, stable


async def test_gzip_and_dispatch_by_suffix(make_lance: LanceFactory, tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(transition(1).model_dump_json() + "\n")
    async with make_lance() as buffer:
        assert (await import_file(buffer, path)).added == 1
        with pytest.raises(ValueError, match="format"):
            await import_file(buffer, tmp_path / "data.csv")


async def test_parquet_round_trip(make_lance: LanceFactory, tmp_path: Path) -> None:
    data = example_transitions()
    async with make_lance() as source:
        await source.add(data)
        assert await export_parquet(source, tmp_path / "plain.parquet") == len(data)
        assert await export_parquet(source, tmp_path / "vectors.parquet", vectors=True) == len(data)
        assert await export_parquet(source, tmp_path / "real.parquet", source=Source.REAL) == 8
    async with make_lance() as target:
        report = await import_parquet(target, tmp_path / "plain.parquet")
        assert report.added == len(data)
        assert sorted(await target.get([t.id for t in data]), key=lambda t: t.id) == data
    memory = InMemoryReplayBuffer(embedder=HashingEmbedder(dim=64))
    async with memory:
        assert (await import_file(memory, tmp_path / "real.parquet")).added == 8


async def test_parquet_with_vectors_skips_re_embedding(make_lance: LanceFactory, tmp_path: Path) -> None:
    data = example_transitions()
    async with make_lance() as source:
        await source.add(data)
        await export_parquet(source, tmp_path / "vectors.parquet", vectors=True)

    class Refusing(HashingEmbedder):
        async def embed(self, texts: Any) -> np.ndarray:  # type: ignore[override]
            raise AssertionError("the vectors should have been reused")

    async with make_lance(embedder=Refusing(dim=64)) as target:
        assert (await import_parquet(target, tmp_path / "vectors.parquet")).added == len(data)
        assert sorted(await target.get([t.id for t in data]), key=lambda t: t.id) == data
    async with make_lance(embedder=HashingEmbedder(dim=32)) as other:  # another embedder: re-embeds
        assert (await import_parquet(other, tmp_path / "vectors.parquet")).added == len(data)


async def test_parquet_validation_names_the_row(make_lance: LanceFactory, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [t.model_dump(mode="json", exclude={"provenance"}) for t in (transition(1), transition(2))]
    rows[1]["reward"] = float("nan")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    async with make_lance() as buffer:
        with pytest.raises(RecordValidationError) as info:
            await import_parquet(buffer, tmp_path / "bad.parquet")
        assert (info.value.record, info.value.field) == ("row 1 (id t000002)", "reward")
        assert await buffer.count() == 0


async def test_hugging_face_datasets_round_trip(make_lance: LanceFactory) -> None:
    pytest.importorskip("datasets")
    data = example_transitions()
    async with make_lance() as source:
        await source.add(data)
        dataset = await to_hf_dataset(source)
        assert len(dataset) == len(data)
        assert dataset.features["provenance_retrieved_ids"].feature.dtype == "string"
    async with make_lance() as target:
        report = await import_hf_dataset(target, dataset, batch_size=5)
        assert report.added == len(data)
        got: list[Transition] = await target.get([t.id for t in data])
        assert got == data
