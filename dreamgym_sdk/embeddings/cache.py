"""An LRU cache in front of any embedder, keyed by a hash of the text's content."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.replay.base import Embedder

__all__ = ["CachedEmbedder"]


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class CachedEmbedder:
    """Wraps an :class:`~dreamgym_sdk.replay.Embedder` with an in-memory LRU cache of vectors.

    The replay buffer embeds the same (state, action) text twice per synthetic step (once to retrieve
    neighbours, once to store the transition), so the second embedding is a cache hit. Duplicate texts
    within one call are embedded once. Same ``name`` and ``dim`` as the wrapped embedder.

    Args:
        inner: the embedder to cache.
        maxsize: most vectors kept (about ``maxsize * dim * 4`` bytes); 0 disables caching.
    """

    def __init__(self, inner: Embedder, *, maxsize: int = 32_768) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.inner = inner
        self.maxsize = maxsize
        self._cache: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self.hits = 0
        """Texts served from the cache so far."""
        self.misses = 0
        """Texts sent to the wrapped embedder so far."""

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts``, calling the wrapped embedder only for texts not cached (deduplicated)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        missing_texts: list[str] = []
        for row, text in enumerate(texts):
            key = _key(text)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                out[row] = cached
                self.hits += 1
            elif key in missing:
                missing[key].append(row)
                self.hits += 1
            else:
                missing[key] = [row]
                missing_texts.append(text)
        if missing_texts:
            self.misses += len(missing_texts)
            vectors = await self.inner.embed(missing_texts)
            if vectors.shape != (len(missing_texts), self.dim):
                raise ValueError(
                    f"embedder {self.name!r} returned shape {vectors.shape}, "
                    f"expected {(len(missing_texts), self.dim)}"
                )
            for (key, rows), vector in zip(missing.items(), vectors, strict=True):
                out[rows] = vector
                if self.maxsize:
                    self._cache[key] = vector.copy()
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return out

    def clear(self) -> None:
        """Forget every cached vector."""
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, maxsize={self.maxsize})"
