"""Where collected transitions go: the :class:`TransitionSink` protocol and two simple sinks.

Any replay buffer with ``async add(transitions)`` is a sink. :class:`JsonlSink` appends JSON lines to a
file (durable after every ``add``), so collection works without a database; :class:`MemorySink` keeps
them in a list (tests, notebooks).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio

from dreamgym_sdk.types import Transition

__all__ = ["JsonlSink", "MemorySink", "TransitionSink", "read_jsonl"]


@runtime_checkable
class TransitionSink(Protocol):
    """Stores transitions; a replay buffer is one."""

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Store ``transitions`` (in order)."""
        ...


class MemorySink:
    """Keeps every added transition in :attr:`transitions`, in order of arrival."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Append ``transitions``."""
        self.transitions.extend(transitions)


class JsonlSink:
    """Appends transitions to a JSON-lines file, one :class:`~dreamgym_sdk.Transition` per line.

    Each ``add`` writes its lines in one go, flushes and fsyncs before returning, so what ``add`` has
    accepted survives a crash. Concurrent ``add`` calls are serialised; the file is created (with its
    directory) on first use and appended to if it exists. Read it back with :func:`read_jsonl`.

    Args:
        path: the ``.jsonl`` file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = anyio.Lock()

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Append ``transitions`` and fsync."""
        if not transitions:
            return
        payload = "".join(t.model_dump_json() + "\n" for t in transitions).encode()
        async with self._lock:
            await anyio.to_thread.run_sync(self._append, payload)

    def read(self) -> list[Transition]:
        """Every transition written so far (see :func:`read_jsonl`)."""
        return read_jsonl(self.path)

    def _append(self, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())


def read_jsonl(path: str | Path) -> list[Transition]:
    """The transitions stored in a JSON-lines file written by :class:`JsonlSink`.

    A final line without its newline (a write cut short by a crash) is ignored; any other malformed
    line raises ``pydantic.ValidationError``. A missing file reads as empty.
    """
    file = Path(path)
    if not file.exists():
        return []
    text = file.read_text()
    lines = text.split("\n")
    complete = lines[:-1]  # the piece after the last newline is empty or an unfinished write
    return [Transition.model_validate_json(line) for line in complete if line.strip()]
