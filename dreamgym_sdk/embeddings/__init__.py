"""Text embedders: the offline default (all-MiniLM-L6-v2), hosted models through LiteLLM, and a hashing
embedder for tests. All implement :class:`~dreamgym_sdk.embeddings.Embedder` and return unit-length float32
rows, so cosine similarity is a dot product.

Heavy dependencies (torch, transformers, litellm) load on first use; this package needs only numpy.
"""

from dreamgym_sdk.embeddings.base import Embedder
from dreamgym_sdk.embeddings.cache import CachedEmbedder
from dreamgym_sdk.embeddings.factory import DEFAULT_EMBEDDER, embedder_for_name, make_embedder
from dreamgym_sdk.embeddings.hashing import HashingEmbedder
from dreamgym_sdk.embeddings.litellm import LiteLLMEmbedder
from dreamgym_sdk.embeddings.transformer import MINILM_NAME, TransformerEmbedder, packaged_minilm_path

__all__ = [
    "DEFAULT_EMBEDDER",
    "MINILM_NAME",
    "CachedEmbedder",
    "Embedder",
    "HashingEmbedder",
    "LiteLLMEmbedder",
    "TransformerEmbedder",
    "embedder_for_name",
    "make_embedder",
    "packaged_minilm_path",
]
