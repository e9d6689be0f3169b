"""Helpers shared by the replay-buffer tests."""

from __future__ import annotations

from typing import Any

from dreamgym_sdk.types import Provenance, Source, Transition


def transition(
    i: int,
    *,
    source: Source = Source.REAL,
    environment: str = "kitchen",
    episode: str | None = None,
    step: int = 0,
    **fields: Any,
) -> Transition:
    """A distinct transition number ``i``."""
    values: dict[str, Any] = {
        "id": f"t{i:06d}",
        "task_id": f"task-{i % 5}",
        "episode_id": episode or f"ep-{i}",
        "step": step,
        "environment": environment,
        "state": f"room {i}: a table, a lamp and door number {i}",
        "action": f"open door {i}",
        "next_state": f"door {i} is open",
        "reward": float(i % 2),
        "source": source,
        "provenance": Provenance(model="test", latency_s=0.01),
    }
    values.update(fields)
    return Transition(**values)
