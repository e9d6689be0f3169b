"""Small numpy helpers shared by the embedders."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["normalize_rows"]


def normalize_rows(matrix: NDArray[np.floating]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm, as float32 (all-zero rows stay zero)."""
    out = np.asarray(matrix, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
