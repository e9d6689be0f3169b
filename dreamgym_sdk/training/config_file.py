"""One validated config file for ``dreamgym train``: every CLI flag maps to one of its keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dreamgym_sdk.config_files import load_config
from dreamgym_sdk.curriculum import CurriculumConfig
from dreamgym_sdk.grounding import ExperienceSection, ReplaySection
from dreamgym_sdk.policies.hf import HFPolicyConfig
from dreamgym_sdk.training.config import GRPOBackendConfig, PPOBackendConfig
from dreamgym_sdk.training.loop import LoopConfig

__all__ = ["ExperienceSection", "PolicySection", "ReplaySection", "TrainConfig", "load_train_config"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicySection(_Section):
    """The local policy being trained."""

    path: str = "runs/policy"
    """A ``save_pretrained`` directory."""
    sampling: HFPolicyConfig = Field(default_factory=HFPolicyConfig)


class TrainConfig(_Section):
    """Everything ``dreamgym train`` needs.

    ``loop.group_size`` is the one group size: the GRPO backend and the curriculum take it (setting
    theirs to another value is an error naming both keys).
    """

    run_dir: str = "runs/train"
    tasks: str = "tasks.jsonl"
    """Seed tasks, one :class:`~dreamgym_sdk.Task` JSON object per line."""
    experience: ExperienceSection = Field(default_factory=ExperienceSection)
    replay: ReplaySection = Field(default_factory=ReplaySection)
    policy: PolicySection = Field(default_factory=PolicySection)
    algorithm: Literal["grpo", "ppo"] = "grpo"
    reward: Literal["return", "success"] = "return"
    """What an episode is worth to GRPO: ``return`` (the sum of its step rewards) or ``success`` (1 or 0,
    the paper's outcome reward: step rewards of a learned experience model can be farmed by repeating a
    rewarded step). PPO learns from the step rewards and takes ``return`` only."""
    generate_tasks: bool | None = None
    """Grow the task pool with the experience model's variations of the tasks whose group rewards vary
    most (the paper's curriculum, see ``curriculum``). ``false`` trains on the seed tasks only.
    ``None``: on, unless the experience model is a distilled directory (trained to predict transitions, it
    cannot write tasks)."""
    grpo: GRPOBackendConfig = Field(default_factory=GRPOBackendConfig)
    ppo: PPOBackendConfig = Field(default_factory=PPOBackendConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)

    @model_validator(mode="before")
    @classmethod
    def _one_group_size(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tree = dict(cast(dict[str, Any], data))
        loop = _section(tree, "loop")
        if loop is None:
            return tree
        size = loop.get("group_size", LoopConfig().group_size)
        for name in ("grpo", "curriculum"):
            section = _section(tree, name)
            if section is None:
                continue
            if "group_size" in section and section["group_size"] != size:
                raise ValueError(
                    f"{name}.group_size={section['group_size']} differs from loop.group_size={size}: "
                    "set loop.group_size only (the backend and the curriculum take it)"
                )
            tree[name] = {**section, "group_size": size}
        return tree

    @model_validator(mode="after")
    def _reward_of_algorithm(self) -> Self:
        if self.algorithm == "ppo" and self.reward != "return":
            raise ValueError(f"reward={self.reward!r} applies to GRPO only: PPO learns from the step rewards")
        return self


def _section(tree: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A section of a raw config tree (``{}`` when absent, ``None`` when it is not a table)."""
    value: object = tree.get(name, {})
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


def load_train_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML, YAML or JSON file (or start from defaults), apply ``{"dotted.key": value}`` overrides,
    validate (see :mod:`dreamgym_sdk.config_files`).

    Raises:
        ConfigError: the file is missing or invalid, naming the offending key.
    """
    return load_config(TrainConfig, path, overrides, what="training config")
