"""The LanceDB replay buffer on a real table under ``tmp_path``: persistence, filters, coalescing,
concurrency, validation, indexing and maintenance."""

from __future__ import annotations

from pathlib import Path

import anyio
import numpy as np
import pytest
from conftest import LanceFactory
from replay_helpers import transition

from dreamgym_sdk.embeddings import CachedEmbedder, HashingEmbedder
from dreamgym_sdk.errors import ConfigError, RecordValidationError, ReplayBufferError
from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig, embedding_text
from dreamgym_sdk.testing.replay import example_transitions
from dreamgym_sdk.types import Provenance, Source, Transition


async def test_every_field_survives_closing_and_reopening(tmp_path: Path, hashing: HashingEmbedder) -> None:
    rich = transition(
        1,
        source=Source.SYNTHETIC,
        environment="o'brien's \"house\"",
        reasoning="Because — naturally — the door was unlocked.\nSecond line.",
        terminated=True,
        truncated=False,
        success=True,
        reward=0.125,
        step=7,
        provenance=Provenance(
            model="openai/gpt-4o-mini",
            prompt_version="reasoning-v2",
            retrieved_ids=("a", "b'c", "d"),
            prompt_tokens=1234,
            completion_tokens=56,
            latency_s=1.5,
            cost_usd=0.00042,
            cached=True,
        ),
    )
    plain = transition(2)
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing) as buffer:
        await buffer.add([rich, plain])
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing) as buffer:
        assert await buffer.get([rich.id, plain.id]) == [rich, plain]
        assert await buffer.count() == 2


async def test_a_table_from_before_samples_gains_the_column_and_keeps_its_rows(
    tmp_path: Path, hashing: HashingEmbedder
) -> None:
    import lancedb

    old = transition(1)
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing) as buffer:
        await buffer.add([old])
    db = await lancedb.connect_async(str(tmp_path / "db"))
    table = await db.open_table(ReplayConfig().table)
    await table.drop_columns(["sample"])  # as schema version 2 wrote it
    sampled = transition(2, sample=example_transitions()[0].sample)
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing) as buffer:
        await buffer.add([sampled])
        assert await buffer.get([old.id, sampled.id]) == [old, sampled]
        assert [t async for batch in buffer.scan() for t in batch if t.sample is not None] == [sampled]


async def test_read_only_opens_only_what_exists_and_writes_nothing(
    tmp_path: Path, hashing: HashingEmbedder
) -> None:
    import lancedb

    with pytest.raises(ReplayBufferError, match="opened read-only, so none is created"):
        async with LanceDBReplayBuffer(tmp_path / "typo", embedder=hashing, read_only=True):
            pass
    assert not (tmp_path / "typo").exists()
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing) as buffer:
        await buffer.add([transition(1)])
    db = await lancedb.connect_async(str(tmp_path / "db"))
    table = await db.open_table(ReplayConfig().table)
    await table.drop_columns(["sample"])  # a table of schema version 2
    version = await table.version()
    async with LanceDBReplayBuffer(tmp_path / "db", embedder=hashing, read_only=True) as buffer:
        assert [t.id async for batch in buffer.scan() for t in batch] == [transition(1).id]
        assert (await buffer.get([transition(1).id]))[0].sample is None
        with pytest.raises(ReplayBufferError, match="read-only"):
            await buffer.add([transition(2)])
    assert await table.version() == version  # no migration, no index, no write


async def test_config_object_and_uris(tmp_path: Path, hashing: HashingEmbedder) -> None:
    config = ReplayConfig(uri=f"file://{tmp_path / 'via-uri'}", table="custom")
    async with LanceDBReplayBuffer(config, embedder=hashing) as buffer:
        await buffer.add([transition(1)])
    assert (tmp_path / "via-uri" / "custom.lance").is_dir()
    async with LanceDBReplayBuffer("memory://", embedder=hashing, table="t") as buffer:  # any LanceDB URI
        await buffer.add([transition(1)])
        assert await buffer.count() == 1


async def test_a_table_remembers_its_embedder(tmp_path: Path, hashing: HashingEmbedder) -> None:
    async with LanceDBReplayBuffer(tmp_path, embedder=hashing) as buffer:
        await buffer.add([transition(1)])
    with pytest.raises(ConfigError, match="hashing-64"):
        async with LanceDBReplayBuffer(tmp_path, embedder=HashingEmbedder(dim=64, bigrams=False)):
            pass
    with pytest.raises(ConfigError):
        async with LanceDBReplayBuffer(tmp_path, embedder=HashingEmbedder(dim=32)):
            pass


async def test_concurrent_adds_are_coalesced_into_few_versions(make_lance: LanceFactory) -> None:
    async with make_lance() as buffer:
        before = await buffer.version()
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(buffer.add, [transition(i)])
        assert await buffer.count() == 200
        assert await buffer.version() - before <= 10, "200 concurrent adds should make a handful of versions"


async def test_200_concurrent_episodes_store_exactly_their_transitions(make_lance: LanceFactory) -> None:
    steps = 5

    async def episode(buffer: LanceDBReplayBuffer, e: int) -> None:
        transitions = [
            transition(
                e * 100 + s, episode=f"ep-{e}", step=s, source=Source.SYNTHETIC if e % 2 else Source.REAL
            )
            for s in range(steps)
        ]
        for t in transitions:
            await buffer.add([t])  # one write per step, as a sink would
            await anyio.lowlevel.checkpoint()
        await buffer.add(transitions)  # and the whole episode again at the end: no duplicates

    async with make_lance() as buffer:
        async with anyio.create_task_group() as tg:
            for e in range(200):
                tg.start_soon(episode, buffer, e)
        assert await buffer.count() == 200 * steps
        ids = [t.id async for batch in buffer.scan(batch_size=333) for t in batch]
        assert len(ids) == len(set(ids)) == 200 * steps
        assert set(ids) == {f"t{e * 100 + s:06d}" for e in range(200) for s in range(steps)}
        assert await buffer.count(source=Source.REAL) == 100 * steps


async def test_a_rejected_batch_leaves_the_table_untouched(make_lance: LanceFactory) -> None:
    async with make_lance() as buffer:
        stored = [transition(i) for i in range(5)]
        await buffer.add(stored)
        version = await buffer.version()
        bad = transition(99).model_copy(update={"reward": float("inf")})
        with pytest.raises(RecordValidationError) as info:
            await buffer.add([transition(50), stored[0].model_copy(update={"reward": 5.0}), bad])
        assert info.value.record == bad.id
        assert info.value.field == "reward"
        assert await buffer.version() == version
        assert await buffer.count() == 5
        assert await buffer.get([t.id for t in stored]) == stored


async def test_add_with_vectors_validates_them(make_lance: LanceFactory) -> None:
    async with make_lance() as buffer:
        ts = [transition(i) for i in range(3)]
        with pytest.raises(RecordValidationError, match="shape"):
            await buffer.add_with_vectors(ts, np.ones((2, 64)))
        nan = np.ones((3, 64))
        nan[1, 5] = np.nan
        with pytest.raises(RecordValidationError) as info:
            await buffer.add_with_vectors(ts, nan)
        assert (info.value.record, info.value.field) == (ts[1].id, "vector")
        with pytest.raises(RecordValidationError, match="zeros"):
            await buffer.add_with_vectors(ts, np.zeros((3, 64)))
        assert await buffer.count() == 0
        vectors = await buffer.embedder.embed([embedding_text(t.state, t.action) for t in ts])
        await buffer.add_with_vectors(ts, vectors * 3.0)  # re-normalised
        hits = await buffer.search(ts[2].state, ts[2].action, k=1)
        assert hits[0].transition == ts[2]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_the_ann_index_is_built_past_the_threshold(make_lance: LanceFactory, tmp_path: Path) -> None:
    uri = str(tmp_path / "indexed")
    data = [transition(i, environment=("kitchen", "garden")[i % 2]) for i in range(600)]
    async with make_lance(uri=uri, index_threshold=400, index_rows_per_partition=50) as buffer:
        await buffer.add(data[:300])
        assert not buffer.vector_indexed
        for start in range(300, 600, 100):
            await buffer.add(data[start : start + 100])
    # Leaving the block waited for the background maintenance that crossing the threshold started.
    async with make_lance(uri=uri) as buffer:
        assert buffer.vector_indexed
        indices = {tuple(i.columns): i.index_type for i in await buffer.table.list_indices()}
        assert indices[("vector",)] == "IvfSq"  # the default index type
        assert {("id",), ("task_id",), ("source",), ("environment",), ("content_hash",)} <= set(indices)
        for t in data[::60]:
            hits = await buffer.search(t.state, t.action, k=4, environment=t.environment)
            assert hits[0].transition.id == t.id
            assert all(h.transition.environment == t.environment for h in hits)
            exact = await buffer.search_vector(
                (await buffer.embedder.embed([embedding_text(t.state, t.action)]))[0], k=4, exact=True,
                environment=t.environment,
            )  # fmt: skip
            # 12 partitions, all probed, re-ranked on exact vectors: exact here (ties in any order).
            assert [h.score for h in hits] == pytest.approx([h.score for h in exact], abs=1e-5)


async def test_a_selective_filter_still_finds_k_hits_with_the_index(make_lance: LanceFactory) -> None:
    async with make_lance(index_threshold=200, index_rows_per_partition=20, nprobes=1) as buffer:
        await buffer.add([transition(i) for i in range(400)])
        await buffer.add([transition(1000 + i, environment="rare") for i in range(4)])
        await buffer.compact()  # waits for the background maintenance that built the index
        assert buffer.vector_indexed
        hits = await buffer.search("anything at all", "look", k=4, environment="rare")
        assert sorted(h.transition.id for h in hits) == [f"t{1000 + i:06d}" for i in range(4)]


@pytest.mark.filterwarnings("ignore:optimize.cleanup_older_than=0")
async def test_compact_merges_files_and_prunes_old_versions(make_lance: LanceFactory) -> None:
    async with make_lance(prune_older_than_s=0, write_window_s=0) as buffer:
        for i in range(12):
            await buffer.add([transition(i)])
        report = await buffer.compact()
        assert report.rows == 12
        assert report.fragments_removed >= 12
        assert report.versions_pruned > 0
        assert len(await buffer.table.list_versions()) <= 2
        assert len(await buffer.get([transition(i).id for i in range(12)])) == 12


async def test_delete_accepts_sql_and_filters(make_lance: LanceFactory) -> None:
    async with make_lance() as buffer:
        await buffer.add(
            [transition(i, source=Source.SYNTHETIC if i % 2 else Source.REAL) for i in range(10)]
        )
        assert await buffer.delete("reward > 0.5", source=Source.SYNTHETIC) == 5
        assert await buffer.delete(ids=["t000000", "missing"]) == 1
        with pytest.raises(ValueError, match="where='true'"):
            await buffer.delete()
        assert await buffer.delete("true") == 4
        assert await buffer.count() == 0
        await buffer.add([transition(3)])  # ids deleted earlier can be stored again
        assert await buffer.count() == 1


async def test_fsync_mode_writes(make_lance: LanceFactory) -> None:
    async with make_lance(fsync=True) as buffer:
        await buffer.add([transition(i) for i in range(3)])
        assert await buffer.count() == 3


async def test_the_buffer_refuses_use_outside_its_block(make_lance: LanceFactory) -> None:
    buffer = make_lance()
    with pytest.raises(ReplayBufferError, match="async with"):
        await buffer.add([transition(1)])
    async with buffer:
        await buffer.add([transition(1)])
    with pytest.raises(ReplayBufferError):
        await buffer.add([transition(2)])
    with pytest.raises(ReplayBufferError):
        await buffer.count()
    with pytest.raises(ReplayBufferError, match="once"):
        async with buffer:
            pass
    await buffer.aclose()  # idempotent


async def test_search_embeds_concurrent_queries_in_one_call(make_lance: LanceFactory) -> None:
    class Counting(HashingEmbedder):
        calls = 0

        async def embed(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
            Counting.calls += 1
            return await super().embed(texts)

    embedder = Counting(dim=64)
    async with make_lance(embedder=embedder) as buffer:
        await buffer.add([transition(i) for i in range(20)])
        Counting.calls = 0
        results: dict[int, Transition] = {}

        async def one(i: int) -> None:
            t = transition(i)
            results[i] = (await buffer.search(t.state, t.action, k=1))[0].transition

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
        assert all(results[i].id == transition(i).id for i in range(20))
        assert Counting.calls <= 3  # the (state, action) texts were cached by the adds anyway
        assert isinstance(buffer.embedder, CachedEmbedder)
        assert buffer.embedder.hits >= 20


async def test_re_adding_stays_idempotent_across_reopen_and_maintenance(
    make_lance: LanceFactory, tmp_path: Path
) -> None:
    uri = str(tmp_path / "dedup")
    data = [transition(i) for i in range(30)]
    async with make_lance(uri=uri, optimize_every_writes=1000) as buffer:
        for t in data[:20]:
            await buffer.add([t])  # 20 small unindexed files
    async with make_lance(uri=uri, optimize_every_writes=3) as buffer:
        await buffer.add(data)  # 20 already stored (not yet in the id index), 10 new
        for t in data:
            await buffer.add([t])  # maintenance runs in between
        await buffer.compact()
        await buffer.add(data)
        assert await buffer.count() == 30
        assert await buffer.delete(ids=[t.id for t in data[:5]]) == 5
        await buffer.add(data)  # deleted ids come back, once
        assert await buffer.count() == 30
        ids = [t.id async for batch in buffer.scan() for t in batch]
        assert sorted(ids) == sorted(t.id for t in data)


async def test_bulk_load_defers_maintenance_to_its_end(make_lance: LanceFactory) -> None:
    async with make_lance(index_threshold=100, optimize_every_writes=1) as buffer:
        async with buffer.bulk_load():
            for start in range(0, 300, 50):
                await buffer.add([transition(i) for i in range(start, start + 50)])
            assert not buffer.vector_indexed
            assert len(await buffer.table.list_versions()) > 6  # nothing compacted or pruned yet
        assert buffer.vector_indexed
        t = transition(123)
        assert (await buffer.search(t.state, t.action, k=1))[0].transition == t


async def test_maintenance_finishing_inside_a_bulk_load_keeps_it_paused(make_lance: LanceFactory) -> None:
    # A background pass scheduled before the block and finishing inside it used to reset the pause count:
    # the block's next writes then ran maintenance (here: built the index) in the middle of the load.
    async with make_lance(optimize_every_writes=1, index_threshold=40) as buffer:

        async def settled() -> None:
            with anyio.fail_after(30):
                while buffer._maintenance_pending:  # noqa: ASYNC110  # pyright: ignore[reportPrivateUsage]
                    await anyio.sleep(0.01)

        lock = buffer._maintenance_lock  # pyright: ignore[reportPrivateUsage]
        await lock.acquire()  # the pass the next write schedules waits here
        await buffer.add([transition(0)])
        async with buffer.bulk_load():
            lock.release()
            await settled()
            await buffer.add([transition(i) for i in range(1, 50)])  # past the index threshold
            await settled()
            assert not buffer.vector_indexed  # paused: no maintenance inside the block
        assert buffer.vector_indexed  # the one pass at its end


@pytest.mark.parametrize("indexed", [False, True])
async def test_concurrent_searches_are_batched_and_each_gets_its_own_answer(
    make_lance: LanceFactory, indexed: bool
) -> None:
    data = [
        transition(
            i,
            environment=("kitchen", "garden", "attic")[i % 3],
            source=(Source.REAL, Source.SYNTHETIC)[i % 2],
        )
        for i in range(300)
    ]
    async with make_lance(index_threshold=100 if indexed else 10**6, index_rows_per_partition=20) as buffer:
        await buffer.add(data)
        if indexed:
            await buffer.compact()
            assert buffer.vector_indexed
        queries = [
            (t, env, src) for t in data[:40] for env, src in ((None, None), (t.environment, Source.REAL))
        ]
        expected = [
            await buffer.search(t.state, t.action, k=3, environment=env, source=src)
            for t, env, src in queries
        ]
        batches_before = buffer._searcher.batches  # pyright: ignore[reportPrivateUsage]
        got: dict[int, list[str]] = {}

        async def one(i: int) -> None:
            t, env, src = queries[i]
            got[i] = [
                h.transition.id
                for h in await buffer.search(t.state, t.action, k=3, environment=env, source=src)
            ]

        async with anyio.create_task_group() as tg:
            for i in range(len(queries)):
                tg.start_soon(one, i)
        assert [got[i] for i in range(len(queries))] == [[h.transition.id for h in e] for e in expected]
        assert buffer._searcher.batches - batches_before < len(queries) / 4  # pyright: ignore[reportPrivateUsage]


async def test_an_ivf_flat_index_can_be_chosen(make_lance: LanceFactory) -> None:
    async with make_lance(index_type="ivf_flat", index_threshold=100, index_rows_per_partition=20) as buffer:
        await buffer.add([transition(i) for i in range(200)])
        await buffer.compact()
        indices = {tuple(i.columns): i.index_type for i in await buffer.table.list_indices()}
        assert indices[("vector",)] == "IvfFlat"
        t = transition(77)
        assert (await buffer.search(t.state, t.action, k=1))[0].transition == t
