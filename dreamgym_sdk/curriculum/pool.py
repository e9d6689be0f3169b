"""The task pool: seed tasks plus accepted generated variations, persisted in the run directory."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable
from pathlib import Path

from dreamgym_sdk.types import Task

__all__ = ["TaskPool"]


class TaskPool:
    """Every task a run may sample, in insertion order.

    A task with a ``parent_id`` is *synthetic* (a generated variation); the others are *seed* tasks. With a
    ``path``, every added task is appended to a JSONL file (flushed and fsynced before ``add`` returns) and
    an existing file is loaded, so a resumed run sees the same pool.

    Args:
        tasks: seed tasks to start from (ignored if already present).
        path: the JSONL file backing the pool, or ``None`` for an in-memory pool.
    """

    def __init__(self, tasks: Iterable[Task] = (), *, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._tasks: dict[str, Task] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    task = Task.model_validate_json(line)
                    self._tasks[task.id] = task
        self.add(*tasks)

    def add(self, *tasks: Task) -> list[Task]:
        """Add tasks not already in the pool; return those that were new."""
        new = [t for t in {t.id: t for t in tasks}.values() if t.id not in self._tasks]
        if not new:
            return []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write("".join(t.model_dump_json() + "\n" for t in new))
                f.flush()
                os.fsync(f.fileno())
        for task in new:
            self._tasks[task.id] = task
        return new

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __getitem__(self, task_id: str) -> Task:
        return self._tasks[task_id]

    @property
    def tasks(self) -> list[Task]:
        """Every task in the pool, in insertion order."""
        return list(self._tasks.values())

    @property
    def seed_tasks(self) -> list[Task]:
        """The seed tasks (those without a ``parent_id``), in insertion order."""
        return [t for t in self._tasks.values() if t.parent_id is None]

    @property
    def synthetic_tasks(self) -> list[Task]:
        """The synthetic tasks (generated variations, with a ``parent_id``), in insertion order."""
        return [t for t in self._tasks.values() if t.parent_id is not None]

    def sample(self, n: int, *, synthetic_share: float, rng: random.Random) -> list[Task]:
        """Draw ``n`` tasks, at most ``floor(synthetic_share * n)`` of them synthetic (the paper's λ cap).

        Tasks are drawn without replacement while the pool lasts, then with replacement.
        """
        if not 0.0 <= synthetic_share <= 1.0:
            raise ValueError("synthetic_share must be within [0, 1]")
        seeds, synthetic = self.seed_tasks, self.synthetic_tasks
        n_synthetic = min(math.floor(synthetic_share * n), len(synthetic))
        if n_synthetic < n and not seeds:
            raise ValueError("the pool has no seed tasks to fill the batch within the synthetic share cap")
        return _draw(synthetic, n_synthetic, rng) + _draw(seeds, n - n_synthetic, rng)


def _draw(tasks: list[Task], n: int, rng: random.Random) -> list[Task]:
    if n <= 0:
        return []
    if n <= len(tasks):
        return rng.sample(tasks, n)
    return rng.sample(tasks, len(tasks)) + [rng.choice(tasks) for _ in range(n - len(tasks))]
