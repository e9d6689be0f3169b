"""Task variations that need no generator model: the same task, started from another real state of it.

In a world whose tasks are fixed by their start (TextWorld: the instruction of every cooking game is the
same, the game is its initial state), a new instruction is no variation at all, and a tiny experience model
cannot invent a world it has not seen. What it can simulate faithfully is the task started from a state a
real episode of it reached: its own real transitions ground every step (retrieval by ``parent_id``).
States from episodes that failed come first: they are where the agent had gone astray (a distractor taken,
an ingredient left behind), the starts the agent handles worst.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dreamgym_sdk.types import Source, Task, Transition

__all__ = ["StartStateVariations"]


class StartStateVariations:
    """A :class:`~dreamgym_sdk.curriculum.TaskGenerator` proposing a task started from its real states.

    A candidate is the parent task with ``initial_state`` set to the state after a non-terminal step of one
    of the parent's real episodes (a state the game ended on cannot be played from). Failed episodes'
    states come first, later steps before earlier ones; states equal to the parent's start or to an earlier
    candidate are skipped. Variations of variations are not proposed: every candidate is a real state of a
    real task, so the experience model's task-scoped retrieval always finds that task's transitions.

    Args:
        transitions: real transitions (offline data, or a replay buffer's); others are ignored.
    """

    def __init__(self, transitions: Iterable[Transition]) -> None:
        self._by_task: dict[str, list[Transition]] = {}
        for t in transitions:
            if t.source is Source.REAL:
                self._by_task.setdefault(t.task_id, []).append(t)
        self._failed_episodes = {
            episode
            for steps in self._by_task.values()
            for episode in {t.episode_id for t in steps}
            if not any(t.success for t in steps if t.episode_id == episode)
        }

    async def propose(self, task: Task, *, k: int) -> Sequence[Task]:
        """Up to ``k`` starts of ``task`` (none for a task that is itself a variation)."""
        if task.parent_id is not None:
            return []
        steps = [t for t in self._by_task.get(task.id, ()) if not (t.terminated or t.truncated)]
        steps.sort(key=lambda t: (t.episode_id not in self._failed_episodes, -t.step, t.id))
        seen = {_normalized(task.initial_state or "")}
        variations: list[Task] = []
        for t in steps:
            state = _normalized(t.next_state)
            if state in seen:
                continue
            seen.add(state)
            failed = t.episode_id in self._failed_episodes
            variations.append(
                task.model_copy(
                    update={
                        "id": f"{task.id}@{t.id}",
                        "initial_state": t.next_state,
                        "parent_id": task.id,
                        "metadata": task.metadata
                        | {"variation": {"start": t.id, "step": t.step + 1, "episode_failed": failed}},
                    }
                )
            )
            if len(variations) == k:
                break
        return variations


def _normalized(state: str) -> str:
    return " ".join(state.split())
