"""Transition sinks: JSON lines on disk and in memory."""

from __future__ import annotations

from pathlib import Path

import anyio

from dreamgym_sdk import Source, Transition
from dreamgym_sdk.collect import (
    JsonlSink,
    MemorySink,
    SkipKnownEpisodes,
    TransitionSink,
    episode_fingerprint,
    read_jsonl,
)


def transitions(episode: str, n: int) -> list[Transition]:
    return [
        Transition(
            task_id="t",
            episode_id=episode,
            step=i,
            state=f"s{i}",
            action=f"a{i}",
            next_state=f"s{i + 1}",
            reward=float(i == n - 1),
            terminated=i == n - 1,
            source=Source.REAL,
        )
        for i in range(n)
    ]


async def test_jsonl_sink_appends_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "real.jsonl"
    sink = JsonlSink(path)
    assert isinstance(sink, TransitionSink)
    assert sink.read() == []
    first, second = transitions("e1", 3), transitions("e2", 2)
    await sink.add(first)
    await sink.add([])
    await JsonlSink(path).add(second)  # another sink on the same file appends
    assert sink.read() == first + second
    assert read_jsonl(path) == first + second
    assert len(path.read_text().splitlines()) == 5


async def test_concurrent_adds_keep_each_batch_whole(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "real.jsonl")
    batches = [transitions(f"e{i}", 5) for i in range(20)]
    async with anyio.create_task_group() as tg:
        for batch in batches:
            tg.start_soon(sink.add, batch)
    stored = sink.read()
    assert len(stored) == 100
    for start in range(0, 100, 5):  # each episode's lines are contiguous and in order
        chunk = stored[start : start + 5]
        assert len({t.episode_id for t in chunk}) == 1
        assert [t.step for t in chunk] == list(range(5))


async def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "real.jsonl")
    await sink.add(transitions("e1", 2))
    with sink.path.open("a") as handle:
        handle.write('{"id": "cut sho')  # a crash in the middle of a write
    assert len(sink.read()) == 2


def test_a_whole_last_line_without_newline_is_kept_and_a_bad_line_is_named(tmp_path: Path) -> None:
    import pytest

    from dreamgym_sdk.errors import RecordValidationError

    path = tmp_path / "by-hand.jsonl"
    rows = [t.model_dump_json() for t in transitions("e1", 2)]
    path.write_text("\n".join(rows))  # a file written by hand often ends without a newline
    assert len(read_jsonl(path)) == 2
    path.write_text(rows[0] + '\n{"task_id": "t"}\n' + rows[1] + "\n")
    with pytest.raises(RecordValidationError, match=r"by-hand\.jsonl:2") as info:
        read_jsonl(path)
    assert info.value.field == "episode_id"  # the first field it lacks


async def test_memory_sink() -> None:
    sink = MemorySink()
    assert isinstance(sink, TransitionSink)
    await sink.add(transitions("e1", 2))
    await sink.add(transitions("e2", 1))
    assert [t.episode_id for t in sink.transitions] == ["e1", "e1", "e2"]


def test_the_fingerprint_ignores_ids_and_sees_content() -> None:
    first = transitions("e1", 3)
    assert episode_fingerprint(first) == episode_fingerprint(transitions("e2", 3))
    assert episode_fingerprint(first) == episode_fingerprint(first[::-1])  # by step, not by arrival
    changed = [*first[:2], first[2].model_copy(update={"reward": 0.5})]
    assert episode_fingerprint(changed) != episode_fingerprint(first)
    assert episode_fingerprint(transitions("e1", 2)) != episode_fingerprint(first)


async def test_collecting_again_adds_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "real.jsonl"
    sink = SkipKnownEpisodes.over_jsonl(path)
    await sink.add(transitions("a", 3))
    await sink.add(transitions("b", 3))  # the same episode played twice: both are kept
    assert len(read_jsonl(path)) == 6 and sink.skipped == 0

    again = SkipKnownEpisodes.over_jsonl(path)  # a re-run: the same two episodes under new ids
    await again.add(transitions("c", 3) + transitions("d", 3))
    assert len(read_jsonl(path)) == 6 and again.skipped == 2
    await again.add(transitions("e", 3))  # a third copy is new
    await again.add(transitions("f", 2))  # so is another episode
    assert [t.episode_id for t in read_jsonl(path)][6:] == ["e"] * 3 + ["f"] * 2
    assert again.skipped == 2


async def test_skipping_forwards_to_any_sink() -> None:
    memory = MemorySink()
    sink = SkipKnownEpisodes(memory, known=transitions("old", 2))
    assert isinstance(sink, TransitionSink)
    await sink.add(transitions("x", 2) + transitions("y", 4))
    assert {t.episode_id for t in memory.transitions} == {"y"} and sink.skipped == 1
