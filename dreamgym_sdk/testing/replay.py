"""``check_replay_buffer``: the conformance check for implementations of the replay-buffer protocol."""

from __future__ import annotations

import math
import warnings
from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any

import anyio

from dreamgym_sdk.errors import ConformanceError, RecordValidationError
from dreamgym_sdk.replay._records import content_hash
from dreamgym_sdk.replay.base import ReplayBuffer, SearchHit
from dreamgym_sdk.types import Provenance, Sample, Source, Transition

__all__ = ["check_replay_buffer", "example_transitions"]

BufferFactory = Callable[[], ReplayBuffer | Awaitable[ReplayBuffer]]
"""Makes a new, empty, not yet entered buffer on every call."""


def _fail(message: str) -> ConformanceError:
    return ConformanceError(f"check_replay_buffer: {message}")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _fail(message)


def example_transitions() -> list[Transition]:
    """Twelve transitions exercising every field: two environments (one name with a quote), three tasks,
    real and synthetic, full provenance, policy samples (constrained and free decoding) on half of them,
    unicode and multi-line text."""
    out: list[Transition] = []
    rooms = ["kitchen", "garden", "cellar", "attic", "library", "garage"]
    for i in range(12):
        room = rooms[i % len(rooms)]
        source = Source.REAL if i % 3 else Source.SYNTHETIC
        out.append(
            Transition(
                id=f"conformance-{i:02d}",
                task_id=f"task-{i % 3}",
                episode_id=f"episode-{i // 4}",
                step=i % 4,
                environment="o'brien's house" if i % 2 else "textworld",
                state=f"You are in the {room}.\nExits: north, south. Item #{i}: a brass key — «clé»",
                action=f"take key {i} from the {room}",
                reasoning=f"The key lies in the {room}; taking it moves it to the inventory.",
                next_state=f"You took key {i}. Inventory: key {i}.",
                reward=1.0 if i % 4 == 3 else 0.0 if i % 2 else 0.25,
                terminated=i % 4 == 3,
                truncated=i == 11,
                success=i % 4 == 3,
                source=source,
                provenance=Provenance(
                    model="openai/gpt-4o-mini" if source is Source.SYNTHETIC else "textworld",
                    prompt_version="v3" if source is Source.SYNTHETIC else None,
                    retrieved_ids=(f"conformance-{(i + 1) % 12:02d}", "other")
                    if source is Source.SYNTHETIC
                    else (),
                    prompt_tokens=100 + i,
                    completion_tokens=20 + i,
                    latency_s=0.5 + i / 100,
                    cost_usd=0.0001 * i if source is Source.SYNTHETIC else None,
                    cached=i % 5 == 0,
                ),
                sample=None if i % 2 else _sample(i),
            )
        )
    return out


def _sample(i: int) -> Sample:
    completion = (40 + i, 41 + i, 2)
    return Sample(
        prompt_ids=tuple(range(1, 9 + i)),
        completion_ids=completion,
        logprobs=(-0.25 - i / 10, 0.0, -1e-3),
        allowed=((40 + i, 7), (41 + i,), (2,)) if i % 4 == 0 else (),
        temperature=1.0,
        policy_version=i,
        finished=True,
        text=f"take key {i}",
        model="tiny-policy",
    )


async def _make(factory: BufferFactory) -> ReplayBuffer:
    made = factory()
    return await made if isinstance(made, Awaitable) else made


async def check_replay_buffer(make_buffer: BufferFactory) -> None:
    """Check a replay-buffer implementation against the protocol; raise ConformanceError if it fails.

    It verifies, on fresh buffers from ``make_buffer``: an empty buffer counts 0 and finds nothing; every
    field of a transition survives ``add`` then ``get`` and ``scan``; adding again (whole batch, or a
    repeated id in one batch, or a changed record with a stored id) stores nothing new; invalid records
    (NaN reward, empty id, wrong type) raise :class:`RecordValidationError` naming the record and field
    and leave the buffer untouched; search returns at most ``k`` hits, best first, the exact (state,
    action) match first with a score near 1, real transitions only by default, and honours the
    environment, task and source filters; ``count``, ``stats``, ``sample``, ``contains_content`` and
    ``delete`` agree with what was stored; 50 concurrent ``add`` calls store exactly their records.

    Args:
        make_buffer: returns a new, empty, not yet entered buffer (sync or async) on every call.
    """
    data = example_transitions()
    by_id = {t.id: t for t in data}
    real = [t for t in data if t.source is Source.REAL]

    async with await _make(make_buffer) as buffer:
        _expect(isinstance(buffer, ReplayBuffer), f"{type(buffer).__name__} does not implement ReplayBuffer")  # pyright: ignore[reportUnnecessaryIsInstance]
        _expect(await buffer.count() == 0, "a new buffer is not empty")
        _expect((await buffer.stats()).total == 0, "stats().total of a new buffer is not 0")
        _expect(await buffer.search("anything", "look") == [], "search on an empty buffer returned hits")
        _expect(await buffer.sample(3, seed=0) == [], "sample on an empty buffer returned transitions")

        await _check_validation(buffer, data)
        await buffer.add(data)
        await _check_round_trip(buffer, data, by_id)
        await _check_idempotent(buffer, data)
        await _check_search(buffer, data, real)
        await _check_counts(buffer, data)
        await _check_sample(buffer, data)
        _expect(
            await buffer.contains_content([content_hash(data[0]), "0" * 32]) == {content_hash(data[0])},
            "contains_content() did not find exactly the stored hash",
        )
        await _check_delete(buffer, data)

    async with await _make(make_buffer) as buffer:
        await _check_concurrent_adds(buffer, data)


async def _check_validation(buffer: ReplayBuffer, data: list[Transition]) -> None:
    bad: list[tuple[Any, str]] = [
        (data[0].model_copy(update={"reward": math.nan}), "reward"),
        (Transition.model_construct(None, **{**dict(data[1]), "id": ""}), "id"),
        ({"state": "a dict, not a Transition"}, "<record>"),
    ]
    for record, field in bad:
        try:
            await buffer.add([data[2], record])
        except RecordValidationError as exc:
            _expect(exc.field == field, f"a bad {field!r} was reported as field {exc.field!r}")
            _expect(exc.record in (1, getattr(record, "id", None)), f"the error names record {exc.record!r}")
        else:
            raise _fail(f"add() accepted a record with a bad {field!r}")
    _expect(await buffer.count() == 0, "a rejected batch left records behind (the valid one was written)")


async def _check_round_trip(
    buffer: ReplayBuffer, data: list[Transition], by_id: dict[str, Transition]
) -> None:
    _expect(await buffer.count() == len(data), f"count() is {await buffer.count()} after adding {len(data)}")
    got = await buffer.get([t.id for t in reversed(data)] + ["no-such-id"])
    _expect([t.id for t in got] == [t.id for t in reversed(data)], "get() lost records or their order")
    for t in got:
        expected = by_id[t.id]
        for name in Transition.model_fields:
            _expect(
                getattr(t, name) == getattr(expected, name), f"field {name!r} of {t.id} changed in storage"
            )
        _expect(t == expected, f"{t.id} did not round-trip")
    scanned = [t async for batch in buffer.scan(batch_size=5) for t in batch]
    _expect(sorted(t.id for t in scanned) == sorted(by_id), "scan() did not yield every record exactly once")
    _expect(all(t == by_id[t.id] for t in scanned), "scan() changed a record")
    real_scan = [t async for batch in buffer.scan(source=Source.REAL) for t in batch]
    _expect(
        {t.id for t in real_scan} == {t.id for t in data if t.source is Source.REAL}, "scan(source=) filter"
    )


async def _check_idempotent(buffer: ReplayBuffer, data: list[Transition]) -> None:
    await buffer.add(data)
    changed = data[0].model_copy(update={"reward": 0.75, "reasoning": "rewritten"})
    fresh = data[0].model_copy(update={"id": "conformance-new", "state": "a new state"})
    await buffer.add([changed, fresh, fresh])
    _expect(await buffer.count() == len(data) + 1, "re-adding stored ids or a repeated id changed the count")
    _expect((await buffer.get([data[0].id]))[0] == data[0], "re-adding an id replaced the stored record")
    _expect(await buffer.delete(ids=["conformance-new"]) == 1, "delete(ids=) did not delete exactly 1")


def _scores_sorted(hits: list[SearchHit]) -> bool:
    return all(a.score >= b.score - 1e-6 for a, b in pairwise(hits))


async def _check_search(buffer: ReplayBuffer, data: list[Transition], real: list[Transition]) -> None:
    target = real[0]
    hits = await buffer.search(target.state, target.action, k=4)
    _expect(0 < len(hits) <= 4, f"search(k=4) returned {len(hits)} hits")
    _expect(hits[0].transition.id == target.id, "the exact (state, action) match is not the first hit")
    _expect(hits[0].score > 0.99, f"the exact match scored {hits[0].score:.4f}, expected about 1")
    _expect(_scores_sorted(hits), "hits are not sorted best first")
    _expect(all(h.transition.source is Source.REAL for h in hits), "search() returned synthetic by default")
    _expect(all(isinstance(h, SearchHit) and math.isfinite(h.score) for h in hits), "bad hit objects")  # pyright: ignore[reportUnnecessaryIsInstance]

    synthetic = next(t for t in data if t.source is Source.SYNTHETIC)
    default = await buffer.search(synthetic.state, synthetic.action, k=12)
    _expect(
        synthetic.id not in {h.transition.id for h in default}, "real-only search found a synthetic record"
    )
    _expect(len(default) == len(real), f"search(k=12) over {len(real)} real records returned {len(default)}")
    any_source = await buffer.search(synthetic.state, synthetic.action, k=3, source=None)
    _expect(any_source[0].transition.id == synthetic.id, "source=None did not search synthetic records")
    only_synthetic = await buffer.search(synthetic.state, synthetic.action, k=12, source=Source.SYNTHETIC)
    _expect(
        {h.transition.id for h in only_synthetic} == {t.id for t in data if t.source is Source.SYNTHETIC},
        "source=SYNTHETIC did not return exactly the synthetic records",
    )
    env = "o'brien's house"
    in_env = await buffer.search(target.state, target.action, k=12, environment=env, source=None)
    _expect(
        {h.transition.id for h in in_env} == {t.id for t in data if t.environment == env},
        "the environment filter (with a quote in the name) did not select exactly its records",
    )
    in_task = await buffer.search(target.state, target.action, k=12, task_id="task-1")
    _expect(
        {h.transition.id for h in in_task} == {t.id for t in real if t.task_id == "task-1"},
        "the task_id filter did not select exactly its real records",
    )
    _expect(_scores_sorted(in_task), "filtered hits are not sorted best first")
    _expect(
        await buffer.search(target.state, target.action, environment="nowhere") == [], "unknown env matched"
    )
    try:
        await buffer.search(target.state, target.action, k=0)
    except ValueError:
        pass
    else:
        raise _fail("search(k=0) did not raise ValueError")


async def _check_counts(buffer: ReplayBuffer, data: list[Transition]) -> None:
    n_real = sum(t.source is Source.REAL for t in data)
    _expect(await buffer.count(source=Source.REAL) == n_real, "count(source=REAL) is wrong")
    _expect(
        await buffer.count(source=Source.SYNTHETIC) == len(data) - n_real, "count(source=SYNTHETIC) is wrong"
    )
    _expect(
        await buffer.count(environment="textworld") == sum(t.environment == "textworld" for t in data),
        "count(environment=) is wrong",
    )
    _expect(
        await buffer.count(task_id="task-2") == sum(t.task_id == "task-2" for t in data), "count(task_id=)"
    )
    stats = await buffer.stats()
    _expect(stats.total == len(data), "stats().total is wrong")
    _expect(dict(stats.by_source) == {"real": n_real, "synthetic": len(data) - n_real}, "stats().by_source")
    _expect(sum(stats.by_environment.values()) == len(data), "stats().by_environment does not add up")
    _expect(sum(stats.by_reward.values()) == len(data), "stats().by_reward does not add up")
    _expect(stats.by_reward.get("1") == sum(t.reward == 1.0 for t in data), "stats().by_reward['1'] is wrong")
    _expect(stats.successes == sum(t.success for t in data), "stats().successes is wrong")


async def _check_sample(buffer: ReplayBuffer, data: list[Transition]) -> None:
    first = await buffer.sample(5, seed=7)
    _expect(
        len(first) == 5 and len({t.id for t in first}) == 5, "sample(5) did not return 5 distinct records"
    )
    _expect(
        [t.id for t in await buffer.sample(5, seed=7)] == [t.id for t in first],
        "sample(seed=) not reproducible",
    )
    everything = await buffer.sample(100, seed=1)
    _expect(
        sorted(t.id for t in everything) == sorted(t.id for t in data), "sample(n > count) is not everything"
    )
    synthetic = await buffer.sample(100, source=Source.SYNTHETIC, seed=1)
    _expect(all(t.source is Source.SYNTHETIC for t in synthetic), "sample(source=) returned other sources")
    in_env = await buffer.sample(100, environment="textworld", seed=1)
    _expect(
        bool(in_env) and all(t.environment == "textworld" for t in in_env), "sample(environment=) is wrong"
    )


async def _check_delete(buffer: ReplayBuffer, data: list[Transition]) -> None:
    try:
        await buffer.delete()
    except ValueError:
        pass
    else:
        raise _fail("delete() without a filter did not raise ValueError")
    n_synthetic = sum(t.source is Source.SYNTHETIC for t in data)
    _expect(
        await buffer.delete(source=Source.SYNTHETIC) == n_synthetic, "delete(source=) returned a wrong count"
    )
    _expect(await buffer.count() == len(data) - n_synthetic, "delete(source=) left a wrong count")
    _expect(await buffer.count(source=Source.SYNTHETIC) == 0, "delete(source=) left synthetic records")
    _expect(await buffer.delete(episode_id="episode-0") == 2, "delete(episode_id=) returned a wrong count")
    _expect(await buffer.delete(ids=["no-such-id"]) == 0, "deleting an unknown id deleted something")


async def _check_concurrent_adds(buffer: ReplayBuffer, data: list[Transition]) -> None:
    batches = [
        [t.model_copy(update={"id": f"{t.id}-w{w}"}) for t in data[w % 4 :: 4]]
        for w in range(50)
    ]  # fmt: skip
    async with anyio.create_task_group() as tg:
        for batch in batches:
            tg.start_soon(buffer.add, batch)
            tg.start_soon(buffer.add, batch[:1])  # a concurrent duplicate
    expected = {t.id for batch in batches for t in batch}
    _expect(
        await buffer.count() == len(expected),
        f"concurrent adds stored {await buffer.count()} of {len(expected)}",
    )
    stored = [t.id async for batch in buffer.scan() for t in batch]
    _expect(sorted(stored) == sorted(expected), "concurrent adds lost or duplicated records")


def __getattr__(name: str) -> object:
    """``sample_transitions``, this module's old name of :func:`example_transitions` (the experience
    judge's ``sample_transitions`` draws a sample), still resolves, with a :class:`DeprecationWarning`."""
    if name != "sample_transitions":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        "dreamgym_sdk.testing.replay.sample_transitions is now example_transitions (this alias goes in 0.3)",
        DeprecationWarning,
        stacklevel=2,
    )
    return example_transitions
