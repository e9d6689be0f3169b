"""An on-disk response cache (sqlite3, WAL) for reproducible, cheap reruns.

**What is cached.** Only deterministic requests: ``temperature == 0`` or an explicit ``seed``. A sampled
request without a seed is meant to differ from call to call, so it always goes to the backend.

**The key** is a SHA-256 of the model string, the messages, every sampling parameter (temperature,
max_tokens, top_p, seed, stop), the response schema and its name, and the provider's extra request
parameters. Change any of them and the call misses.

**A hit** returns the stored response with ``cached=True``. Its ``usage`` is the usage of the original
call (so token statistics stay comparable); budget accounting should skip responses with ``cached=True``.
Only successful answers are stored. Many tasks and processes may share one cache directory: writes are
serialised by sqlite (WAL mode, busy timeout), and a lost race writes the same answer twice.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk.providers.base import ChatRequest, ChatResponse

__all__ = ["ResponseCache", "cache_key", "is_cacheable"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def is_cacheable(request: ChatRequest) -> bool:
    """Whether a request is deterministic enough to cache: temperature 0 or a fixed seed."""
    return request.temperature == 0 or request.seed is not None


def cache_key(model: str, request: ChatRequest, extra_params: dict[str, Any] | None = None) -> str:
    """The cache key of ``request`` sent to ``model`` with ``extra_params``."""
    payload = {
        "model": model,
        "request": request.model_dump(mode="json"),
        "extra": extra_params or {},
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """A response cache in ``<directory>/responses.sqlite3``.

    The blocking sqlite calls run in worker threads; one connection is shared under a lock.

    Args:
        directory: created if missing.
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "responses.sqlite3"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.hits = 0
        """Lookups that found an answer."""
        self.misses = 0
        """Lookups that found none."""

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def get_sync(self, key: str) -> ChatResponse | None:
        """The stored response for ``key``, marked ``cached=True``, or ``None``."""
        with self._lock:
            row = (
                self._connection().execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
            )
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return ChatResponse.model_validate_json(row[0]).model_copy(update={"cached": True})

    def put_sync(self, key: str, response: ChatResponse) -> None:
        """Store ``response`` under ``key`` (replacing an older one)."""
        blob = response.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO responses (key, model, response, created) VALUES (?, ?, ?, ?)",
                (key, response.model, blob, time.time()),
            )

    async def get(self, key: str) -> ChatResponse | None:
        """Async :meth:`get_sync`, off the event loop."""
        return await anyio.to_thread.run_sync(self.get_sync, key)

    async def put(self, key: str, response: ChatResponse) -> None:
        """Async :meth:`put_sync`, off the event loop."""
        await anyio.to_thread.run_sync(self.put_sync, key, response)

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database connection. Idempotent; the cache reopens on next use."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
