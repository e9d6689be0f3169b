"""Experience models: what replaces the real environment during training."""

from dreamgym_sdk.experience.base import ExperienceModel, ExperienceOutput, ExperienceRequest, Prediction

__all__ = ["ExperienceModel", "ExperienceOutput", "ExperienceRequest", "Prediction"]
