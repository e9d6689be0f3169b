"""The curriculum: reward-variance task selection, generated variations, the λ-capped task pool."""

from dreamgym_sdk.curriculum.curriculum import Curriculum, CurriculumConfig, Decision, TaskGenerator
from dreamgym_sdk.curriculum.pool import TaskPool
from dreamgym_sdk.curriculum.starts import StartStateVariations
from dreamgym_sdk.curriculum.stats import TaskStats, TaskStatsTracker, reward_variance

__all__ = [
    "Curriculum",
    "CurriculumConfig",
    "Decision",
    "StartStateVariations",
    "TaskGenerator",
    "TaskPool",
    "TaskStats",
    "TaskStatsTracker",
    "reward_variance",
]
