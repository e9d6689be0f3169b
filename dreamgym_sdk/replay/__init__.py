"""The experience replay buffer: real and synthetic transitions, retrieved to ground the simulator.

Importing this package is light: the buffers, embedders and import/export helpers (numpy, LanceDB,
pyarrow) load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dreamgym_sdk.replay._records import content_hash, embedding_text
from dreamgym_sdk.replay.admission import AdmissionPolicy, AdmissionReport, EpisodeAdmitter, admit_episodes
from dreamgym_sdk.replay.base import Embedder, ReplayBuffer, ReplayStats, Retriever, SearchHit
from dreamgym_sdk.replay.config import IndexType, ReplayConfig
from dreamgym_sdk.replay.jsonl import parse_jsonl_line, parse_record

if TYPE_CHECKING:
    from dreamgym_sdk.replay.io import (
        ImportReport,
        export_jsonl,
        export_parquet,
        import_file,
        import_hf_dataset,
        import_jsonl,
        import_parquet,
        to_hf_dataset,
    )
    from dreamgym_sdk.replay.lance import LanceDBReplayBuffer, MaintenanceReport, stored_embedder
    from dreamgym_sdk.replay.memory import InMemoryReplayBuffer

__all__ = [
    "AdmissionPolicy",
    "AdmissionReport",
    "Embedder",
    "EpisodeAdmitter",
    "ImportReport",
    "InMemoryReplayBuffer",
    "IndexType",
    "LanceDBReplayBuffer",
    "MaintenanceReport",
    "ReplayBuffer",
    "ReplayConfig",
    "ReplayStats",
    "Retriever",
    "SearchHit",
    "admit_episodes",
    "content_hash",
    "embedding_text",
    "export_jsonl",
    "export_parquet",
    "import_file",
    "import_hf_dataset",
    "import_jsonl",
    "import_parquet",
    "parse_jsonl_line",
    "parse_record",
    "stored_embedder",
    "to_hf_dataset",
]

_LAZY = {
    "LanceDBReplayBuffer": "lance",
    "MaintenanceReport": "lance",
    "stored_embedder": "lance",
    "InMemoryReplayBuffer": "memory",
    "ImportReport": "io",
    "export_jsonl": "io",
    "export_parquet": "io",
    "import_file": "io",
    "import_hf_dataset": "io",
    "import_jsonl": "io",
    "import_parquet": "io",
    "to_hf_dataset": "io",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
