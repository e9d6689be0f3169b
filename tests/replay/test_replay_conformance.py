"""The conformance check passes for both implementations and catches broken ones."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from conftest import LanceFactory

from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.errors import ConformanceError
from dreamgym_sdk.replay import InMemoryReplayBuffer, ReplayBuffer, Retriever, SearchHit
from dreamgym_sdk.testing.replay import check_replay_buffer
from dreamgym_sdk.types import Source, Transition


async def test_lancedb_buffer_conforms(make_lance: LanceFactory) -> None:
    await check_replay_buffer(make_lance)


async def test_in_memory_buffer_conforms(hashing: HashingEmbedder) -> None:
    await check_replay_buffer(lambda: InMemoryReplayBuffer(embedder=hashing))


async def test_lancedb_buffer_conforms_with_the_ann_index(make_lance: LanceFactory) -> None:
    # A tiny index threshold: the index is built during the check, and search must still be exact enough.
    await check_replay_buffer(lambda: make_lance(index_threshold=10, optimize_every_writes=1))


def test_both_implement_the_protocols(make_lance: LanceFactory, hashing: HashingEmbedder) -> None:
    for buffer in (make_lance(), InMemoryReplayBuffer(embedder=hashing)):
        assert isinstance(buffer, ReplayBuffer)
        assert isinstance(buffer, Retriever)


class _IgnoresSource(InMemoryReplayBuffer):
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
        return await super().search(state, action, k=k, environment=environment, task_id=task_id, source=None)


class _DuplicatesOnReAdd(InMemoryReplayBuffer):
    async def add(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            if isinstance(t, Transition):
                self._items.pop(t.id, None)  # re-adding replaces: the stored record changes
        await super().add(transitions)


class _WritesBeforeValidating(InMemoryReplayBuffer):
    async def add(self, transitions: Sequence[Transition]) -> None:
        good = [t for t in transitions if isinstance(t, Transition) and t.reward == t.reward and t.id]
        await super().add(good)
        await super().add(transitions)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_IgnoresSource, "synthetic by default"),
        (_DuplicatesOnReAdd, "replaced the stored record"),
        (_WritesBeforeValidating, "rejected batch left records behind"),
    ],
)
async def test_the_check_catches_broken_buffers(
    broken: type[InMemoryReplayBuffer], message: str, hashing: HashingEmbedder
) -> None:
    with pytest.raises(ConformanceError, match=message):
        await check_replay_buffer(lambda: broken(embedder=hashing))
