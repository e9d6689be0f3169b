"""dreamgym-sdk: train LLM agents with reinforcement learning on synthetic experience.

The public surface is what this module exports; everything else is private or lives in a submodule
(``dreamgym_sdk.testing``, ``dreamgym_sdk.experience``, ``dreamgym_sdk.integrations.<name>``, ...).
"""

from dreamgym_sdk._version import __version__
from dreamgym_sdk.bus import EventBus, Overflow, Subscription, SubscriptionStats
from dreamgym_sdk.env import DreamEnv, Env, RecordedEnv, RecordingEnv
from dreamgym_sdk.errors import (
    BusClosedError,
    ConfigError,
    DreamGymError,
    EnvClosedError,
    EnvError,
    EpisodeFinishedError,
    ExperienceModelError,
    MissingExtraError,
    ModelOutputError,
    NothingToTrainError,
    ProviderError,
    ResetNeededError,
    SubscriberOverflowError,
    UntrainableEpisodeError,
)
from dreamgym_sdk.events import (
    EpisodeCompleted,
    EpisodeStarted,
    Event,
    PolicyUpdated,
    TaskAccepted,
    TaskProposed,
    TaskRejected,
    TransitionRecorded,
    event_from_json,
    event_to_json,
)
from dreamgym_sdk.experience import (
    ExperienceModel,
    ExperienceOutput,
    ExperienceRequest,
    Prediction,
    ReasoningConfig,
    ReasoningExperienceModel,
)
from dreamgym_sdk.logging import configure_logging
from dreamgym_sdk.policies import Policy
from dreamgym_sdk.rollout import RolloutRunner, group_by_task, run_episode
from dreamgym_sdk.training import TrainerBackend, attach_trainer
from dreamgym_sdk.types import (
    Action,
    Episode,
    Provenance,
    Sample,
    Source,
    StepResult,
    Task,
    Transition,
    fork_task,
)

__all__ = [
    "Action",
    "BusClosedError",
    "ConfigError",
    "DreamEnv",
    "DreamGymError",
    "Env",
    "EnvClosedError",
    "EnvError",
    "Episode",
    "EpisodeCompleted",
    "EpisodeFinishedError",
    "EpisodeStarted",
    "Event",
    "EventBus",
    "ExperienceModel",
    "ExperienceModelError",
    "ExperienceOutput",
    "ExperienceRequest",
    "MissingExtraError",
    "ModelOutputError",
    "NothingToTrainError",
    "Overflow",
    "Policy",
    "PolicyUpdated",
    "Prediction",
    "Provenance",
    "ProviderError",
    "ReasoningConfig",
    "ReasoningExperienceModel",
    "RecordedEnv",
    "RecordingEnv",
    "ResetNeededError",
    "RolloutRunner",
    "Sample",
    "Source",
    "StepResult",
    "SubscriberOverflowError",
    "Subscription",
    "SubscriptionStats",
    "Task",
    "TaskAccepted",
    "TaskProposed",
    "TaskRejected",
    "TrainerBackend",
    "Transition",
    "TransitionRecorded",
    "UntrainableEpisodeError",
    "__version__",
    "attach_trainer",
    "configure_logging",
    "event_from_json",
    "event_to_json",
    "fork_task",
    "group_by_task",
    "run_episode",
]
