"""Configuration of the LanceDB replay buffer: where it lives, how it embeds, writes and indexes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["IndexType", "ReplayConfig"]


class IndexType(StrEnum):
    """The approximate-nearest-neighbour index built once the table is large enough."""

    IVF_SQ = "ivf_sq"
    """Inverted file over k-means partitions with 8-bit scalar-quantised vectors, re-ranked on the exact
    vectors (``refine_factor``): a quarter of the bytes scanned per probe (default)."""
    IVF_FLAT = "ivf_flat"
    """Inverted file with exact vectors: no re-ranking needed, about twice the latency at equal recall."""
    IVF_HNSW_SQ = "ivf_hnsw_sq"
    """HNSW graphs inside IVF partitions over 8-bit scalar-quantised vectors: smaller, slower to build."""


class ReplayConfig(BaseModel):
    """Where the replay buffer lives and how it behaves; every field has an offline-ready default.

    ```python
    from dreamgym_sdk.replay import ReplayConfig

    config = ReplayConfig(uri="runs/demo/replay", embedder="hashing")
    ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str = "dreamgym-run/replay"
    """A local directory, or any LanceDB URI (``s3://bucket/path``, ``gs://...``, ``db://...`` for
    LanceDB Cloud)."""
    table: str = "transitions"
    """Name of the table of transitions."""
    storage_options: dict[str, str] = Field(default_factory=dict[str, str])
    """Object-store options passed to LanceDB (credentials, region, endpoint, ...)."""
    api_key: SecretStr | None = None
    """LanceDB Cloud API key (``db://`` URIs); defaults to ``$LANCEDB_API_KEY``."""
    region: str = "us-east-1"
    """LanceDB Cloud region."""
    read_consistency_interval_s: float | None = Field(default=None, ge=0)
    """How often reads check for writes made by *other* processes: ``None`` never (fastest; this
    process always sees its own writes), ``0`` on every read."""

    embedder: str = "minilm"
    """Embedder spec (see :func:`dreamgym_sdk.embeddings.make_embedder`): ``"minilm"``, ``"hf:<path>"``,
    ``"hashing"`` or ``"litellm:<model>"``. Ignored when an embedder object is passed to the buffer."""
    embedder_dim: int | None = Field(default=None, ge=1)
    """Vector length, for embedders that need it (hashing, litellm)."""
    embed_cache_size: int = Field(default=32_768, ge=0)
    """Vectors kept in the in-memory LRU cache keyed by text hash (0 disables it)."""
    embed_cache_path: str | None = None
    """Also cache vectors in this SQLite file, across runs (e.g. ``"runs/embeddings.sqlite"``)."""

    read_only: bool = False
    """Open an existing table for reading only: a missing table is an error naming it, and nothing is
    created, migrated, indexed or written (``add``, ``delete`` and maintenance raise). Commands that only
    read (``dreamgym replay stats``, ``search``, ``export``) open buffers this way."""

    write_window_s: float = Field(default=0.005, ge=0)
    """Write coalescing: after the first pending ``add``, wait this long for more before writing. All adds
    pending when a write starts become one table version."""
    max_write_rows: int = Field(default=50_000, ge=1)
    """A coalesced write stops growing at this many rows (one larger ``add`` is still written whole)."""
    fsync: bool = False
    """Local tables only: after every write, fsync the new files and their directories before ``add``
    returns, so acknowledged writes also survive an OS crash or power loss (LanceDB's local writer does not
    fsync; without this, acknowledged writes survive a process crash, not a machine crash)."""

    index_threshold: int = Field(default=20_000, ge=1)
    """Rows at which the ANN vector index is built automatically; below it search is exact (brute force)."""
    index_type: IndexType = IndexType.IVF_SQ
    """Which ANN index to build."""
    index_rows_per_partition: int = Field(default=1_000, ge=16)
    """Target rows per IVF partition (``num_partitions = rows / this``)."""
    nprobes: int = Field(default=32, ge=1)
    """IVF partitions searched per query (recall versus latency)."""
    refine_factor: int | None = Field(default=2, ge=1)
    """Quantised indexes: fetch ``refine_factor * k`` candidates and re-rank them on the exact vectors
    (``None``: rank on the quantised distances)."""
    reindex_growth: float = Field(default=2.0, gt=1)
    """Retrain the vector index when the table has grown this many times since it was built."""

    optimize_every_writes: int = Field(default=50, ge=1)
    """Run maintenance (compact files, index new rows, prune old versions) after this many writes..."""
    optimize_every_rows: int = Field(default=100_000, ge=1)
    """...or after this many new rows, whichever comes first."""
    prune_older_than_s: float = Field(default=600.0, ge=0)
    """Maintenance deletes table versions older than this (seconds). Readers in other processes pinned
    to an older version fail once it is pruned, so keep it above your longest read."""
