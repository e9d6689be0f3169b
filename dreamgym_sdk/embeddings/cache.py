"""A cache in front of any embedder, keyed by a hash of the text: in memory (LRU), optionally on disk."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import anyio
import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk.embeddings.base import Embedder

__all__ = ["CachedEmbedder"]


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class _DiskCache:
    """Vectors in a SQLite file, one table per embedder name; every call runs in a worker thread."""

    def __init__(self, path: Path, embedder: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._table = "v_" + hashlib.blake2b(embedder.encode(), digest_size=8).hexdigest()
        self._connection.execute(f"CREATE TABLE IF NOT EXISTS {self._table} (k BLOB PRIMARY KEY, v BLOB)")
        self._dim = dim
        self._lock = threading.Lock()

    def get(self, keys: list[bytes]) -> dict[bytes, NDArray[np.float32]]:
        found: dict[bytes, NDArray[np.float32]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._connection.execute(f"SELECT k, v FROM {self._table} WHERE k IN ({marks})", chunk)
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self._dim,):
                        found[key] = vector
        return found

    def put(self, items: list[tuple[bytes, bytes]]) -> None:
        with self._lock:
            self._connection.executemany(f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)", items)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class CachedEmbedder:
    """Wraps an :class:`~dreamgym_sdk.replay.Embedder` with a cache of vectors keyed by text hash.

    The replay buffer embeds the same (state, action) text twice per synthetic step (once to retrieve
    neighbours, once to store the transition), so the second embedding is a cache hit. Duplicate texts
    within one call are embedded once. Same ``name`` and ``dim`` as the wrapped embedder.

    Args:
        inner: the embedder to cache.
        maxsize: most vectors kept in memory (about ``maxsize * dim * 4`` bytes); 0 disables that layer.
        path: also keep every vector in this SQLite file, shared across runs and processes (texts are
            not stored, only their hashes); entries are per embedder name.
    """

    def __init__(self, inner: Embedder, *, maxsize: int = 32_768, path: str | Path | None = None) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.inner = inner
        self.maxsize = maxsize
        self.path = Path(path) if path is not None else None
        self._disk: _DiskCache | None = None
        self._cache: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self.hits = 0
        """Texts served from a cache so far (memory or disk)."""
        self.misses = 0
        """Texts sent to the wrapped embedder so far."""

    @property
    def name(self) -> str:
        """The wrapped embedder's name (the cache changes no vector)."""
        return self.inner.name

    @property
    def dim(self) -> int:
        """The wrapped embedder's vector length."""
        return self.inner.dim

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts``, calling the wrapped embedder only for texts not cached (deduplicated)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        missing_texts: dict[bytes, str] = {}
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
                missing_texts[key] = text
        if missing and self.path is not None:
            disk = await self._disk_cache()
            for key, vector in (await anyio.to_thread.run_sync(disk.get, list(missing))).items():
                out[missing.pop(key)] = vector
                del missing_texts[key]
                self._remember(key, vector)
                self.hits += 1
        if missing:
            self.misses += len(missing)
            vectors = await self.inner.embed(list(missing_texts.values()))
            expected = (len(missing), self.dim)
            if vectors.shape != expected:
                raise ValueError(
                    f"embedder {self.name!r} returned shape {vectors.shape}, expected {expected}"
                )
            vectors = vectors.astype(np.float32, copy=False)
            for (key, rows), vector in zip(missing.items(), vectors, strict=True):
                out[rows] = vector
                self._remember(key, vector.copy())
            if self.path is not None:
                disk = await self._disk_cache()
                items = [(key, vector.tobytes()) for key, vector in zip(missing, vectors, strict=True)]
                await anyio.to_thread.run_sync(disk.put, items)
        return out

    def _remember(self, key: bytes, vector: NDArray[np.float32]) -> None:
        if self.maxsize:
            self._cache[key] = vector
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)

    async def _disk_cache(self) -> _DiskCache:
        if self._disk is None:
            assert self.path is not None
            self._disk = await anyio.to_thread.run_sync(_DiskCache, self.path, self.name, self.dim)
        return self._disk

    def clear(self) -> None:
        """Forget every vector cached in memory (the disk cache is kept)."""
        self._cache.clear()

    def close(self) -> None:
        """Close the disk cache, if any; it reopens on the next call."""
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, maxsize={self.maxsize}, path={self.path})"
