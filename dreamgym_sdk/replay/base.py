"""Protocols of the replay buffer: retrieval for grounding and storage of transitions (the embedder they
use is :class:`~dreamgym_sdk.embeddings.Embedder`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from dreamgym_sdk.embeddings.base import Embedder
from dreamgym_sdk.types import Source, Transition

if TYPE_CHECKING:
    pass

__all__ = ["Embedder", "ReplayBuffer", "ReplayStats", "Retriever", "SearchHit"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A retrieved transition and its similarity to the query (cosine, higher is closer)."""

    transition: Transition
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Finds the stored transitions most similar to a (state, action) pair."""

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
        """The ``k`` nearest transitions, best first; real ones only unless ``source`` says otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """Counts of what a replay buffer holds."""

    total: int
    """Number of stored transitions."""
    by_source: Mapping[str, int] = field(default_factory=dict[str, int])
    """Counts per :class:`~dreamgym_sdk.Source` value (``"real"``, ``"synthetic"``)."""
    by_environment: Mapping[str, int] = field(default_factory=dict[str, int])
    """Counts per environment name."""
    by_reward: Mapping[str, int] = field(default_factory=dict[str, int])
    """Counts per reward value (``"0"``, ``"1"``, ...), or per reward range (``"[0.2, 0.4)"``) when
    there are more than ten distinct values."""
    successes: int = 0
    """Transitions with ``success=True``."""


@runtime_checkable
class ReplayBuffer(Retriever, Protocol):
    """Stores real and synthetic transitions, retrieves them for grounding and samples them for training.

    Implementations are async context managers: enter before use, and leaving the block (or
    :meth:`aclose`) finishes pending writes. :func:`dreamgym_sdk.testing.check_replay_buffer` checks an
    implementation against this contract.

    Filters (``environment``, ``task_id``, ``episode_id``, ``source``) combine with AND; ``None``
    means "any".
    """

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Store ``transitions``; once this returns they are durable and visible to every read.

        Adding a transition whose id is already stored is a no-op (the stored one is kept), so
        re-adding is idempotent. The whole batch is validated first: if any record is invalid,
        :class:`~dreamgym_sdk.errors.RecordValidationError` names it and nothing is written.
        """
        ...

    async def get(self, ids: Sequence[str]) -> list[Transition]:
        """The stored transitions with these ids, in the order given; unknown ids are skipped."""
        ...

    async def sample(
        self,
        n: int,
        *,
        source: Source | None = None,
        environment: str | None = None,
        seed: int | None = None,
    ) -> list[Transition]:
        """Up to ``n`` distinct transitions drawn uniformly at random (reproducible for a given ``seed``
        and table content)."""
        ...

    async def count(
        self,
        *,
        source: Source | None = None,
        environment: str | None = None,
        task_id: str | None = None,
    ) -> int:
        """Number of stored transitions matching the filters."""
        ...

    async def stats(self) -> ReplayStats:
        """Counts by source, environment and reward."""
        ...

    async def delete(
        self,
        *,
        ids: Sequence[str] | None = None,
        environment: str | None = None,
        task_id: str | None = None,
        episode_id: str | None = None,
        source: Source | None = None,
    ) -> int:
        """Delete the matching transitions and return how many were deleted.

        At least one filter is required (deleting everything must be explicit, see the implementation).
        """
        ...

    async def contains_content(self, hashes: Sequence[str]) -> set[str]:
        """Which of these content hashes (see :func:`~dreamgym_sdk.replay.content_hash`) are stored."""
        ...

    def scan(
        self,
        *,
        batch_size: int = 1024,
        source: Source | None = None,
        environment: str | None = None,
    ) -> AsyncIterator[list[Transition]]:
        """Iterate over every stored transition matching the filters, in batches (order unspecified)."""
        ...

    async def aclose(self) -> None:
        """Finish pending writes and release resources; idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
