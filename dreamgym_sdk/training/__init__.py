"""Training: the trainer-backend protocol, RL backends (GRPO via TRL, PPO), the DreamGym loop, evaluation.

Heavy dependencies (torch, transformers, trl) load only when a backend is created.
"""

from dreamgym_sdk.training.base import TrainerBackend, attach_trainer
from dreamgym_sdk.training.config import BackendConfig, GRPOBackendConfig, LoraSettings, PPOBackendConfig
from dreamgym_sdk.training.evaluate import (
    ActionReplay,
    EvalReport,
    PairedDifference,
    Wm2RealReport,
    evaluate,
    paired_difference,
    replay_actions,
    wilson_interval,
    wm2real,
)
from dreamgym_sdk.training.grpo import GRPOBackend
from dreamgym_sdk.training.loop import Budget, Checkpointable, DreamGymTrainer, LoopConfig, iteration_metrics
from dreamgym_sdk.training.ppo import PPOBackend
from dreamgym_sdk.training.sequences import (
    NotOneSequenceError,
    TokenSequence,
    build_episode_sequence,
    gae,
    group_advantages,
)

__all__ = [
    "ActionReplay",
    "BackendConfig",
    "Budget",
    "Checkpointable",
    "DreamGymTrainer",
    "EvalReport",
    "GRPOBackend",
    "GRPOBackendConfig",
    "LoopConfig",
    "LoraSettings",
    "NotOneSequenceError",
    "PPOBackend",
    "PPOBackendConfig",
    "PairedDifference",
    "TokenSequence",
    "TrainerBackend",
    "Wm2RealReport",
    "attach_trainer",
    "build_episode_sequence",
    "evaluate",
    "gae",
    "group_advantages",
    "iteration_metrics",
    "paired_difference",
    "replay_actions",
    "wilson_interval",
    "wm2real",
]
