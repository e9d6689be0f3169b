"""Embedders: the hashing one, the LRU cache, the factory, LiteLLM (with a fake ``aembedding``), and the
default MiniLM, whose retrieval is semantic."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import LanceFactory
from replay_helpers import transition

from dreamgym_sdk.embeddings import (
    CachedEmbedder,
    HashingEmbedder,
    LiteLLMEmbedder,
    TransformerEmbedder,
    make_embedder,
)
from dreamgym_sdk.errors import ConfigError, ProviderError, ProviderStatusError, RateLimitError
from dreamgym_sdk.replay import Embedder
from dreamgym_sdk.types import Source


async def test_hashing_is_deterministic_normalised_and_lexical() -> None:
    embedder = HashingEmbedder(dim=128)
    vectors = await embedder.embed(["Open the fridge", "open THE fridge!", "fly to the moon", ""])
    assert vectors.shape == (4, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0)
    assert not vectors[3].any()  # no tokens: the zero vector
    assert vectors[0] @ vectors[1] == pytest.approx(1.0)
    assert vectors[0] @ vectors[2] < 0.5
    big = await embedder.embed([f"text {i}" for i in range(1000)])  # the thread path
    assert big.shape == (1000, 128)
    assert isinstance(embedder, Embedder)


def test_hashing_is_the_same_in_another_process() -> None:
    code = (
        "import anyio; from dreamgym_sdk.embeddings import HashingEmbedder;"
        "print(anyio.run(HashingEmbedder(dim=128).embed, ['Open the fridge'])[0][:8].tolist())"
    )
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = HashingEmbedder(dim=128).embed_sync(["Open the fridge"])[0][:8].tolist()
    assert other_process.stdout.strip() == str(here)


async def test_the_cache_embeds_each_text_once() -> None:
    calls: list[list[str]] = []

    class Recording(HashingEmbedder):
        async def embed(self, texts: Sequence[str]) -> Any:
            calls.append(list(texts))
            return await super().embed(texts)

    cache = CachedEmbedder(Recording(dim=32), maxsize=2)
    first = await cache.embed(["a", "b", "a"])
    assert calls == [["a", "b"]]
    assert np.array_equal(first[0], first[2])
    again = await cache.embed(["b", "c"])
    assert calls[-1] == ["c"] and np.array_equal(again[0], first[1])
    await cache.embed(["a"])  # evicted by the LRU (maxsize=2)
    assert calls[-1] == ["a"]
    assert (cache.hits, cache.misses, len(cache)) == (2, 4, 2)
    assert (cache.name, cache.dim) == ("hashing-32-bigrams", 32)


def test_make_embedder_specs() -> None:
    assert isinstance(make_embedder("hashing", dim=16), HashingEmbedder)
    assert make_embedder("hashing").dim == 256
    assert isinstance(make_embedder("minilm"), TransformerEmbedder)
    assert isinstance(make_embedder("hf:/some/model"), TransformerEmbedder)
    assert make_embedder("litellm:openai/text-embedding-3-small", dim=1536).name.startswith("litellm:")
    with pytest.raises(ConfigError, match="dim"):
        make_embedder("litellm:openai/text-embedding-3-small")
    with pytest.raises(ConfigError, match="unknown embedder"):
        make_embedder("word2vec")


@pytest.fixture
def fake_litellm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    litellm = pytest.importorskip("litellm")
    requests: list[dict[str, Any]] = []

    async def aembedding(**kwargs: Any) -> Any:
        requests.append(kwargs)
        if kwargs["input"] == ["boom"]:
            raise SimpleNamespace_error(429)
        if kwargs["input"] == ["bad"]:
            raise SimpleNamespace_error(500)
        if kwargs["input"] == ["flaky"] and sum(r["input"] == ["flaky"] for r in requests) == 1:
            raise SimpleNamespace_error(503)  # the first try only
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(kwargs["input"])]
        return SimpleNamespace(data=list(reversed(data)))  # out of order on purpose

    monkeypatch.setattr(litellm, "aembedding", aembedding)
    return requests


class SimpleNamespace_error(Exception):  # a fake LiteLLM exception with a status code
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


async def test_litellm_embedder_batches_orders_and_normalises(fake_litellm: list[dict[str, Any]]) -> None:
    embedder = LiteLLMEmbedder("openai/text-embedding-3-small", dim=3, batch_size=2, api_base="http://x")
    vectors = await embedder.embed(["a", "bbb", "cc"])
    assert [r["input"] for r in fake_litellm] == [["a", "bbb"], ["cc"]]
    assert fake_litellm[0]["api_base"] == "http://x"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[1][0] > vectors[0][0]  # "bbb" is the longer text: its first coordinate is larger
    with pytest.raises(RateLimitError):
        await embedder.embed(["boom"])
    with pytest.raises(ProviderStatusError) as info:
        await embedder.embed(["bad"])
    assert info.value.status_code == 500
    with pytest.raises(ProviderError, match="expected dim=4"):
        await LiteLLMEmbedder("m", dim=4).embed(["a"])


async def test_litellm_embedder_retries_transient_faults_as_providers_do(
    fake_litellm: list[dict[str, Any]],
) -> None:
    from dreamgym_sdk.providers import RetryPolicy

    embedder = LiteLLMEmbedder("m", dim=3, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01))
    assert (await embedder.embed(["flaky"])).shape == (1, 3)  # a 503, then an answer
    assert [r["input"] for r in fake_litellm] == [["flaky"], ["flaky"]]
    assert fake_litellm[0]["num_retries"] == 0  # LiteLLM's own retries are off: ours count
    with pytest.raises(RateLimitError):
        await embedder.embed(["boom"])
    assert len(fake_litellm) == 2 + 3  # a 429 every time: three tries, then the typed error


async def test_minilm_vectors(minilm: TransformerEmbedder) -> None:
    assert (minilm.name, minilm.dim) == ("all-MiniLM-L6-v2", 384)
    vectors = await minilm.embed(
        ["open the fridge", "open the refrigerator", "the stock market fell", "x" * 5000]
    )
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.8 > 0.3 > vectors[0] @ vectors[2]
    assert (await minilm.embed([])).shape == (0, 384)


# Stored real transitions, a paraphrase of the first (no shared content words besides "kitchen"), and
# an unrelated query.
STORED = [
    ("You are in the kitchen. A closed fridge stands next to a table with an apple on it.", "open fridge"),
    ("Bedroom: a wooden wardrobe by the bed; the window is open.", "close the window"),
    ("[12] textbox 'Search' [13] button 'Go' on the store's home page", "type 'red shoes' into [12]"),
    ("A dark cellar; water drips somewhere. A torch hangs on the wall.", "take torch"),
    ("Cart: 2 items, subtotal $54.20. [88] button 'Proceed to checkout'", "click [88]"),
]
PARAPHRASE = ("The kitchen has a shut refrigerator; an apple lies on the table.", "open the refrigerator")
UNRELATED = ("Quarterly revenue report, page 3: operating margin improved to 14%.", "scroll down")


async def test_retrieval_with_the_default_embedder_is_semantic(
    make_lance: LanceFactory, minilm: TransformerEmbedder
) -> None:
    data = [
        transition(i, state=state, action=action, environment="home", source=Source.REAL)
        for i, (state, action) in enumerate(STORED)
    ]
    async with make_lance(embedder=minilm) as buffer:
        await buffer.add(data)
        hits = await buffer.search(*PARAPHRASE, k=4)
        assert hits[0].transition.id == data[0].id, "the paraphrase should find its neighbour"
        assert hits[0].score > 0.8
        assert hits[0].score - hits[1].score > 0.2
        unrelated = await buffer.search(*UNRELATED, k=5)
        assert unrelated[0].transition.id != data[0].id
        assert unrelated[0].score < 0.5
        assert next(h.score for h in unrelated if h.transition.id == data[0].id) < 0.3
    # The hashing embedder only matches words: the paraphrase does not single out its neighbour there.
    async with make_lance() as lexical:
        await lexical.add(data)
        lexical_hits = await lexical.search(*PARAPHRASE, k=2)
        assert lexical_hits[0].score - lexical_hits[1].score < hits[0].score - hits[1].score


async def test_the_disk_cache_survives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "vectors.sqlite"
    first = CachedEmbedder(HashingEmbedder(dim=32), path=path)
    vectors = await first.embed(["a", "b"])
    first.close()

    class Refusing(HashingEmbedder):
        async def embed(self, texts: Sequence[str]) -> Any:
            raise AssertionError(f"should come from the disk cache: {texts}")

    second = CachedEmbedder(Refusing(dim=32), maxsize=0, path=path)
    assert np.array_equal(await second.embed(["b", "a"]), vectors[::-1])
    assert second.hits == 2
    other = CachedEmbedder(HashingEmbedder(dim=32, bigrams=False), path=path)  # another name: not shared
    await other.embed(["a"])
    assert other.misses == 1
