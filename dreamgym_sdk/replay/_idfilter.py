"""A Bloom filter of stored ids: most new ids are known to be absent without asking the table.

Only the ids it reports as possibly present (all stored ones, plus about 1% false positives) are looked up
in the table. Deleted ids stay "possibly present", which only costs a lookup. It lives in memory and is
rebuilt from the table's id column when a process opens the table (Python's per-process string hash
is fine for that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["IdFilter"]

_HASHES = 7
_BITS_PER_ID = 10  # with 7 hashes: about 1% false positives at capacity
_MIX = np.uint64(0x9E3779B97F4A7C15)


class IdFilter:
    """A fixed-capacity Bloom filter over strings; rebuild a larger one once ``full``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 1 << 14)
        bits = 1 << int(np.ceil(np.log2(self.capacity * _BITS_PER_ID)))
        self._mask = np.uint64(bits - 1)
        self._bytes = np.zeros(bits // 8, dtype=np.uint8)
        self.count = 0

    def _positions(self, ids: Sequence[str]) -> NDArray[np.uint64]:
        h1 = np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids)).view(np.uint64)
        h2 = (h1 * _MIX) >> np.uint64(29) | np.uint64(1)
        steps = np.arange(_HASHES, dtype=np.uint64)
        return (h1[:, None] + steps[None, :] * h2[:, None]) & self._mask

    def add(self, ids: Sequence[str]) -> None:
        """Record ``ids`` as stored."""
        if not ids:
            return
        positions = self._positions(ids).ravel()
        np.bitwise_or.at(
            self._bytes, positions >> np.uint64(3), (1 << (positions & np.uint64(7))).astype(np.uint8)
        )
        self.count += len(ids)

    def might_contain(self, ids: Sequence[str]) -> NDArray[np.bool_]:
        """For each id: ``False`` if it was certainly never added, ``True`` if it may have been."""
        if not ids:
            return np.zeros(0, dtype=bool)
        positions = self._positions(ids)
        bits = self._bytes[positions >> np.uint64(3)] & (1 << (positions & np.uint64(7))).astype(np.uint8)
        return (bits != 0).all(axis=1)

    @property
    def full(self) -> bool:
        """Whether it holds more ids than its capacity (the false-positive rate is climbing)."""
        return self.count > self.capacity
