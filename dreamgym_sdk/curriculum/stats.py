"""Per-task outcome statistics and the curriculum's task value: group reward variance."""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from dreamgym_sdk.types import Episode

__all__ = ["TaskStats", "TaskStatsTracker", "reward_variance"]


def reward_variance(rewards: Sequence[float]) -> float:
    """``V = (1/n) Σ (r_i − r̄)²``: the population variance of a group's episode rewards.

    High for tasks the policy sometimes solves and sometimes not (the most informative for GRPO), zero for
    tasks it always or never solves, and for groups of fewer than two rollouts.
    """
    return statistics.pvariance(rewards) if len(rewards) >= 2 else 0.0


@dataclass(frozen=True, slots=True)
class TaskStats:
    """A snapshot of one task's recent outcomes."""

    task_id: str
    rewards: tuple[float, ...]
    """Total rewards of the most recent rollouts (at most the group size), oldest first."""
    episodes: int
    """Rollouts observed in total."""
    successes: int
    """Successful rollouts in total."""

    @property
    def variance(self) -> float:
        """Group reward variance over :attr:`rewards`."""
        return reward_variance(self.rewards)

    @property
    def mean_reward(self) -> float:
        """Mean of :attr:`rewards` (0 when there are none)."""
        return sum(self.rewards) / len(self.rewards) if self.rewards else 0.0

    @property
    def success_rate(self) -> float:
        """Share of the observed rollouts that succeeded (0 before the first)."""
        return self.successes / self.episodes if self.episodes else 0.0


class TaskStatsTracker:
    """Keeps the last ``window`` episode rewards of every task (the GRPO group: ``window = n``).

    Args:
        window: how many recent rollouts count towards a task's variance.
    """

    def __init__(self, window: int = 8) -> None:
        if window < 2:
            raise ValueError("window must be at least 2 (variance needs two rollouts)")
        self.window = window
        self._rewards: dict[str, deque[float]] = {}
        self._episodes: dict[str, int] = {}
        self._successes: dict[str, int] = {}

    def observe(self, episode: Episode) -> None:
        """Record one completed episode."""
        task_id = episode.task.id
        self._rewards.setdefault(task_id, deque(maxlen=self.window)).append(episode.total_reward)
        self._episodes[task_id] = self._episodes.get(task_id, 0) + 1
        self._successes[task_id] = self._successes.get(task_id, 0) + int(episode.success)

    def get(self, task_id: str) -> TaskStats:
        """Stats of ``task_id`` (empty if never observed)."""
        return TaskStats(
            task_id,
            tuple(self._rewards.get(task_id, ())),
            self._episodes.get(task_id, 0),
            self._successes.get(task_id, 0),
        )

    def all(self) -> list[TaskStats]:
        """Stats of every observed task."""
        return [self.get(task_id) for task_id in self._rewards]
