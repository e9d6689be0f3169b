"""Training: the trainer-backend protocol and the RL backends."""

from dreamgym_sdk.training.base import TrainerBackend, attach_trainer

__all__ = ["TrainerBackend", "attach_trainer"]
