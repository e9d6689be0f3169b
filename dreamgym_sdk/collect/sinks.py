"""Where collected transitions go: the :class:`TransitionSink` protocol and two simple sinks.

Any replay buffer with ``async add(transitions)`` is a sink. :class:`JsonlSink` appends JSON lines to a
file (durable after every ``add``), so collection works without a database; :class:`MemorySink` keeps
them in a list (tests, notebooks). :class:`SkipKnownEpisodes` in front of a sink makes collecting again
into it safe: an episode it already holds is not written twice.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
from pydantic import ValidationError

from dreamgym_sdk.errors import RecordValidationError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.replay._records import content_hash
from dreamgym_sdk.types import Transition

__all__ = [
    "JsonlSink",
    "MemorySink",
    "SkipKnownEpisodes",
    "TransitionSink",
    "episode_fingerprint",
    "read_jsonl",
]

_log = get_logger("dreamgym_sdk.collect")


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
    """The transitions stored in a JSON-lines file (written by :class:`JsonlSink`, or by hand); blank lines
    are skipped and a missing file reads as empty.

    A final line without its newline that is not a whole transition (a write cut short by a crash) is
    skipped with a warning; any other malformed line raises.

    Raises:
        RecordValidationError: a line is not a transition; ``record`` is ``"<path>:<line number>"``.
    """
    file = Path(path)
    if not file.exists():
        return []
    lines = file.read_text(encoding="utf-8").split("\n")
    transitions: list[Transition] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            transitions.append(Transition.model_validate_json(line))
        except ValidationError as exc:
            if number == len(lines):  # no newline after it: an unfinished write
                _log.warning("jsonl.unfinished_line_skipped", path=str(file), line=number)
                continue
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "<line>"
            raise RecordValidationError(error["msg"], record=f"{file}:{number}", field=where) from exc
    return transitions


def episode_fingerprint(transitions: Sequence[Transition]) -> str:
    """What an episode's transitions say happened, whatever their ids: the task and each step's
    :func:`~dreamgym_sdk.replay.content_hash` and reward, in order. The same game played again with the
    same seeds has the same fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    for t in sorted(transitions, key=lambda t: t.step):
        digest.update(f"{t.task_id}\x1f{t.step}\x1f{content_hash(t)}\x1f{t.reward!r}\x1e".encode())
    return digest.hexdigest()


class SkipKnownEpisodes:
    """Passes to ``sink`` only the episodes it does not hold yet, so running a collection again into the
    same sink adds nothing twice.

    Episodes are compared by :func:`episode_fingerprint`, with multiplicity: a sink holding two copies of
    an episode (an expert that plays a game twice the same way) absorbs two repeats of it, and a third
    is written.

    ```python
    sink = SkipKnownEpisodes.over_jsonl("real.jsonl")  # knows what the file already holds
    await collect(..., sink=sink)
    print(sink.skipped, "episodes were already there")
    ```

    Transitions are grouped by ``episode_id`` within each ``add`` (the collector adds one episode at a time).

    Args:
        sink: where new episodes go.
        known: transitions already stored there (their episodes are known).
    """

    def __init__(self, sink: TransitionSink, known: Iterable[Transition] = ()) -> None:
        self.sink = sink
        self.skipped = 0
        """Episodes not written because the sink already held them."""
        self._known = Counter(episode_fingerprint(e) for e in _by_episode(known))

    @classmethod
    def over_jsonl(cls, path: str | Path, sink: TransitionSink | None = None) -> SkipKnownEpisodes:
        """Skip the episodes the JSON-lines file at ``path`` holds; write to ``sink`` (default: that file)."""
        return cls(sink if sink is not None else JsonlSink(path), read_jsonl(path))

    async def add(self, transitions: Sequence[Transition]) -> None:
        """Add the transitions of every episode not seen yet."""
        new: list[Transition] = []
        for episode in _by_episode(transitions):
            fingerprint = episode_fingerprint(episode)
            if self._known[fingerprint] > 0:
                self._known[fingerprint] -= 1
                self.skipped += 1
            else:
                new.extend(episode)
        if new:
            await self.sink.add(new)


def _by_episode(transitions: Iterable[Transition]) -> list[list[Transition]]:
    episodes: dict[str, list[Transition]] = {}
    for t in transitions:
        episodes.setdefault(t.episode_id, []).append(t)
    return list(episodes.values())
