"""A fast, deterministic embedder for tests: signed feature hashing of word unigrams and bigrams."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise

import anyio
import numpy as np
from numpy.typing import NDArray

__all__ = ["HashingEmbedder"]

_TOKEN = re.compile(r"\w+")
_INLINE_LIMIT = 256  # larger batches are embedded in a worker thread


class HashingEmbedder:
    """Embeds text by hashing its lower-cased words and word pairs into ``dim`` signed buckets.

    Deterministic across processes and machines, needs no model and embeds tens of thousands of short
    texts per second. Texts sharing words are close; paraphrases with different words are not, so use
    it for tests and plumbing, not for semantic retrieval.

    Args:
        dim: number of dimensions.
        bigrams: also hash adjacent word pairs (captures a little word order).
    """

    def __init__(self, dim: int = 256, *, bigrams: bool = True) -> None:
        if dim < 2:
            raise ValueError("dim must be at least 2")
        self._dim = dim
        self._bigrams = bigrams
        self._bucket = lru_cache(maxsize=1 << 16)(self._bucket_uncached)

    @property
    def name(self) -> str:
        """``hashing-<dim>``, plus ``-bigrams`` when word pairs are hashed, e.g. ``"hashing-256-bigrams"``."""
        return f"hashing-{self._dim}{'-bigrams' if self._bigrams else ''}"

    @property
    def dim(self) -> int:
        """Length of every vector (the number of buckets)."""
        return self._dim

    def _bucket_uncached(self, feature: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        return h % self._dim, 1.0 if (h >> 63) & 1 else -1.0

    def embed_sync(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed on the calling thread (the work behind :meth:`embed`)."""
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            features = words + [f"{a} {b}" for a, b in pairwise(words)] if self._bigrams else words
            for feature in features:
                index, sign = self._bucket(feature)
                out[row, index] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts``; large batches run in a worker thread so the event loop stays responsive."""
        if len(texts) <= _INLINE_LIMIT:
            return self.embed_sync(texts)
        return await anyio.to_thread.run_sync(self.embed_sync, list(texts))

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self._dim}, bigrams={self._bigrams})"
