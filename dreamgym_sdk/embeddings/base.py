"""The embedder protocol: what the replay buffers and retrieval need from a text embedding model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors; cosine similarity is then a dot product.

    ``name`` identifies the model and its settings: vectors from embedders with different names are
    not comparable, so a replay table remembers the name it was built with.
    """

    @property
    def name(self) -> str:
        """A stable identifier of the model and its settings (e.g. ``"minilm-l6-v2"``)."""
        ...

    @property
    def dim(self) -> int:
        """Length of every vector."""
        ...

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` as an array of shape ``(len(texts), dim)``, each row L2-normalised."""
        ...
