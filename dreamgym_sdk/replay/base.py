"""Protocols of the replay buffer: retrieval for grounding, and storage of transitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dreamgym_sdk.types import Source, Transition

__all__ = ["Retriever", "SearchHit"]


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
