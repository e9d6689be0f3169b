"""Configuration of the RL backends: data, validated at the edge, with defaults that run on a CPU."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BackendConfig", "GRPOBackendConfig", "LoraSettings", "PPOBackendConfig"]


class LoraSettings(BaseModel):
    """Train LoRA adapters (``peft``) instead of every weight.

    The adapters are injected into the policy's model in place, so the policy samples with them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    r: int = Field(default=8, ge=1)
    """Rank of the adapters."""
    alpha: int = Field(default=16, ge=1)
    """Scaling numerator (``lora_alpha``)."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Modules to adapt; ``"all-linear"`` adapts every linear layer but the output head."""


class BackendConfig(BaseModel):
    """Settings every backend shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(default=1e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    """Clip the gradient norm to this (``None``: no clipping)."""
    device: str | None = None
    """Where to train; ``None`` uses the policy model's device. The model must already be there."""
    seed: int = 0
    """Seeds the trainer's RNGs when the backend builds its optimizer."""
    lora: LoraSettings | None = None
    """Train LoRA adapters instead of the full model."""
    skip_untrainable: bool = False
    """An episode the backend cannot train on (its transitions carry no :class:`~dreamgym_sdk.Sample`, it is
    too stale, it is not one token sequence) raises :class:`~dreamgym_sdk.UntrainableEpisodeError`;
    ``True`` skips it instead, with a warning, counted in the update's ``skipped/<reason>`` metrics."""
    max_policy_lag: int | None = Field(default=None, ge=0)
    """The most weight updates an episode's samples may lag behind the policy when it is observed (e.g.
    episodes played by Ray workers holding older weights); staler episodes are untrainable (reason
    ``stale``). ``None``: no bound. The lag is reported as ``policy_lag`` either way."""


class GRPOBackendConfig(BackendConfig):
    """Settings of :class:`~dreamgym_sdk.training.GRPOBackend`; most map onto TRL's ``GRPOConfig``."""

    group_size: int = Field(default=4, ge=2)
    """Rollouts per task in a group (TRL's ``num_generations``): match the rollout runner's ``group_size``.
    Groups with more episodes are split, smaller ones wait for more (see ``max_group_wait``)."""
    max_group_wait: int = Field(default=1, ge=0)
    """Updates an incomplete group may wait for its missing episodes before it is dropped."""
    groups_per_step: int | None = Field(default=None, ge=1)
    """Groups per optimizer step; ``None`` puts every group of an update in one step."""
    num_iterations: int = Field(default=1, ge=1)
    """Optimizer steps on each batch (μ in the GRPO paper); > 1 makes the clipping matter."""
    epsilon: float = Field(default=0.2, gt=0)
    """Lower clip range of the importance ratio."""
    epsilon_high: float | None = Field(default=None, gt=0)
    """Upper clip range (``None``: same as ``epsilon``)."""
    beta: float = Field(default=0.0, ge=0)
    """KL coefficient against the reference model (the model at its load path, or the base model under
    LoRA). 0 loads no reference model."""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """TRL's loss aggregation; ``dapo`` normalises by the number of trained tokens."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Divide advantages by the group's reward std (``group``), the batch's, or not at all."""
    skip_zero_std_groups: bool = True
    """Leave out groups whose rewards are all equal: their advantages are exactly 0, so they add no policy
    gradient, only compute (and, with ``beta > 0``, KL pull). With every group left out, no step is taken."""
    off_policy_mask_threshold: float | None = Field(default=None, gt=0)
    """TRL's off-policy sequence mask: drop negative-advantage sequences whose recorded sampling
    log-probs drifted more than this (mean KL) from the current policy."""
    max_completion_length: int = Field(default=1024, ge=1)
    """Only used by ``dr_grpo`` as its normaliser."""
    forward_batch_size: int | None = Field(default=None, ge=1)
    """Sequences per forward pass when scoring without gradients (``None``: ``group_size``)."""
    trl_args: dict[str, Any] = Field(default_factory=dict[str, Any])
    """Further ``trl.GRPOConfig`` fields, passed as they are (e.g. ``{"importance_sampling_level":
    "sequence"}``); they override the ones derived from this config."""


class PPOBackendConfig(BackendConfig):
    """Settings of :class:`~dreamgym_sdk.training.PPOBackend` (turn-level PPO with a value head)."""

    gamma: float = Field(default=1.0, ge=0, le=1)
    """Discount per step."""
    gae_lambda: float = Field(default=0.95, ge=0, le=1)
    clip_range: float = Field(default=0.2, gt=0)
    """Clip range of the importance ratio."""
    value_clip_range: float | None = Field(default=0.2, gt=0)
    """Clip of the value update around the old values (``None``: unclipped)."""
    vf_coef: float = Field(default=0.5, ge=0)
    """Weight of the value loss."""
    ent_coef: float = Field(default=0.0, ge=0)
    """Weight of the entropy bonus."""
    kl_beta: float = Field(default=0.0, ge=0)
    """KL penalty against a frozen copy of the initial policy (or the base model under LoRA)."""
    epochs: int = Field(default=1, ge=1)
    """Passes over each batch."""
    minibatch_size: int | None = Field(default=None, ge=1)
    """Steps per optimizer step; ``None``: the whole batch in one step per epoch."""
    normalize_advantages: bool = True
    value_learning_rate: float = Field(default=1e-3, gt=0)
    """Learning rate of the value head (it starts from zero)."""
