"""GRPO with TRL: group-normalised advantages over the rollouts of a task, multi-turn episodes as one
sequence each with the environment's tokens masked out of the loss.

**Which TRL seam.** ``trl.GRPOTrainer`` normally drives its own rollouts: it draws prompts from a dataset,
calls ``rollout_func(prompts, trainer)`` for token ids, scores them with ``reward_funcs``, normalises the
rewards per group of ``num_generations`` and computes its clipped loss. In DreamGym the rollouts have
already happened (the rollout runner drove the policy through the environment), so this backend makes
``rollout_func`` *replay* them: each row handed to ``trainer.training_step`` names one observed episode,
and ``rollout_func`` returns that episode's recorded ``prompt_ids``, ``completion_ids`` (every action and
the environment's tokens in between), ``logprobs`` and ``env_mask`` (0 on environment tokens, which TRL
multiplies into its loss mask) plus the episode's reward, which a one-line reward function hands back to
TRL. Everything after that is TRL's own code: the group advantages (``scale_rewards``; a zero-variance
group gets advantage 0), the reference-model KL (``beta``), the clipped surrogate (``epsilon``,
``epsilon_high``, ``loss_type``, ``num_iterations``), the off-policy mask and every logged metric.

**What is ours.** The outer loop: we call the public ``Trainer.training_step`` per optimizer step on rows
of complete groups, then clip the gradients and step the optimizer ourselves (holding the policy's
weights lock), and read TRL's metrics through ``Trainer.log``. We never call ``trainer.train()``: its loop
owns a dataset sampler, a step budget and a scheduler fixed at the start, none of which fit a stream of
episodes that arrive while training continues. Consequences, documented rather than hidden:

- Every episode must be one token sequence (a transcript-style :class:`HFPolicy`); others raise
  :class:`~dreamgym_sdk.UntrainableEpisodeError` (reason ``not_one_sequence``), or with
  ``skip_untrainable`` are skipped and counted under ``skipped/not_one_sequence``.
- A group must have exactly ``group_size`` episodes (TRL groups rows in fixed blocks): larger groups are
  split, smaller ones wait up to ``max_group_wait`` updates and are then dropped (``dropped_episodes``).
- Tokens a policy drew under constrained decoding (:attr:`TokenSequence.allowed`) are scored under the
  distribution renormalised over the tokens decoding allowed, as they were sampled: the trainer replaces
  TRL's per-token scoring for those batches (its fused log-prob head knows no constraint) and computes
  logits at the action positions only. The reference model's KL is scored the same way.
- With ``num_iterations == 1`` TRL takes the old log-probs to be the current ones (ratio 1, TRL's
  standard on-policy shortcut); the recorded sampling log-probs feed its off-policy mask. ``policy_lag``
  reports how many weight writes happened between sampling and training.
- TRL resets the global Python/NumPy/torch RNGs (``set_seed``) when the trainer is built (at the first
  update or ``load``); the policy's own sampling generator is unaffected.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.training._backend import PolicyBackend, device_of, lora_config
from dreamgym_sdk.training._scoring import score_tokens
from dreamgym_sdk.training.config import GRPOBackendConfig
from dreamgym_sdk.training.sequences import (
    NotOneSequenceError,
    TokenSequence,
    build_episode_sequence,
    group_advantages,
)
from dreamgym_sdk.types import Episode

__all__ = ["GRPOBackend"]

EpisodeReward = Callable[[Episode], float]


@dataclass(frozen=True, slots=True)
class _Rollout:
    episode_id: str
    sequence: TokenSequence
    reward: float
    version: int


@dataclass(slots=True)
class _PendingGroup:
    rollouts: list[_Rollout] = field(default_factory=list[_Rollout])
    waited: int = 0


class GRPOBackend(PolicyBackend[GRPOBackendConfig, list[list[_Rollout]]]):
    """Trains an :class:`HFPolicy` in place with TRL's GRPO on the episodes it observes.

    ```python
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=4, learning_rate=1e-5))
    attach_trainer(bus, backend)                 # observe every EpisodeCompleted
    await runner.run(tasks, group_size=4)        # each transition carries the policy's Sample
    await bus.join()
    metrics = await backend.update()             # one GRPO update, off the event loop
    ```

    Args:
        policy: the policy trained in place (the episodes' samples must come from its model).
        config: GRPO settings.
        reward: an episode's reward (default: its total reward).
    """

    kind = "grpo"

    def __init__(
        self,
        policy: HFPolicy,
        config: GRPOBackendConfig | None = None,
        *,
        reward: EpisodeReward | None = None,
    ) -> None:
        super().__init__(policy, config or GRPOBackendConfig())
        self.reward: EpisodeReward = reward or (lambda episode: episode.total_reward)
        self.device = device_of(policy, self.config)
        if self.config.beta > 0 and self.config.lora is None and not _model_path(policy.model):
            raise ConfigError(
                "beta > 0 loads a reference model from the policy model's path; this model has none "
                "(load it with HFPolicy.from_pretrained, or train LoRA adapters, or set beta=0)"
            )
        self.dropped_episodes = 0
        """Episodes dropped with groups that stayed incomplete."""
        self._groups: dict[str, _PendingGroup] = {}
        self._rows: dict[str, _Rollout] = {}
        self._loss_positions: dict[tuple[int, ...], _LossPositions] = {}
        """What the loss uses of each sequence of the current step, by its tokens (TRL hands them back
        padded and shuffled); empty unless one of them was decoded under a constraint."""
        self._trainer: Any = None
        self._output_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def trainer(self) -> Any:
        """The ``trl.GRPOTrainer`` (``None`` until the first update or ``load``)."""
        return self._trainer

    @property
    def pending_episodes(self) -> int:
        """Episodes observed and waiting for an update."""
        return sum(len(g.rollouts) for g in self._groups.values())

    async def observe(self, episode: Episode) -> None:
        """Turn the episode's samples into one sequence and add it to its task's group.

        Raises:
            UntrainableEpisodeError: the episode cannot be trained on (unless ``skip_untrainable``).
        """
        samples = self._samples(episode)
        if samples is None:
            return
        try:
            sequence = build_episode_sequence(samples)
        except NotOneSequenceError as exc:
            self._untrainable(episode, "not_one_sequence", str(exc))
            return
        version = min(s.policy_version for s in samples)
        rollout = _Rollout(episode.id, sequence, float(self.reward(episode)), version)
        self._groups.setdefault(episode.task.id, _PendingGroup()).rollouts.append(rollout)

    def _take_batch(self) -> list[list[_Rollout]] | None:
        n = self.config.group_size
        groups: list[list[_Rollout]] = []
        for task_id, pending in list(self._groups.items()):
            while len(pending.rollouts) >= n:
                groups.append(pending.rollouts[:n])
                pending.rollouts = pending.rollouts[n:]
            if not pending.rollouts:
                del self._groups[task_id]
                continue
            pending.waited += 1
            if pending.waited > self.config.max_group_wait:
                self.dropped_episodes += len(pending.rollouts)
                del self._groups[task_id]
        return groups or None

    # -- training, in a worker thread -----------------------------------------------------------------

    def _train(self, batch: list[list[_Rollout]]) -> dict[str, float]:
        cfg = self.config
        rewards = [r.reward for group in batch for r in group]
        advantages = [
            group_advantages([r.reward for r in group], scale=cfg.scale_rewards == "group") for group in batch
        ]
        zero_std = [all(a == 0.0 for a in adv) for adv in advantages]
        trained = [g for g, z in zip(batch, zero_std, strict=True) if not (z and cfg.skip_zero_std_groups)]
        trained_adv = [
            a
            for adv, z in zip(advantages, zero_std, strict=True)
            if not (z and cfg.skip_zero_std_groups)
            for a in adv
        ]
        sequences = [r.sequence for group in trained for r in group]
        metrics: dict[str, float] = {
            "episodes": float(len(rewards)),
            "groups": float(len(batch)),
            "groups_zero_std": float(sum(zero_std)),
            "groups_trained": float(len(trained)),
            "mean_reward": statistics.fmean(rewards),
            "reward_std": statistics.pstdev(rewards),
            "advantage_mean": statistics.fmean(trained_adv) if trained_adv else 0.0,
            "advantage_std": statistics.pstdev(trained_adv) if trained_adv else 0.0,
            "advantage_min": min(trained_adv, default=0.0),
            "advantage_max": max(trained_adv, default=0.0),
            "policy_tokens": float(sum(s.policy_tokens for s in sequences)),
            "env_tokens": float(sum(s.env_tokens for s in sequences)),
            "policy_lag": statistics.fmean(self.policy.version - r.version for g in trained for r in g)
            if trained
            else 0.0,
            "dropped_episodes": float(self.dropped_episodes),
            "optimizer_steps": 0.0,
        }
        if not trained:
            return metrics  # no group carries a learning signal: no step, weights unchanged
        self._build()
        trainer = self._trainer
        per_step = cfg.groups_per_step or len(trained)
        logs: list[dict[str, float]] = []
        for start in range(0, len(trained), per_step):
            chunk = trained[start : start + per_step]
            self._rows = {r.episode_id: r for group in chunk for r in group}
            rows = [{"prompt": r.episode_id} for group in chunk for r in group]
            for _ in range(cfg.num_iterations):
                loss = trainer.training_step(trainer.model, rows, None)
                grad_norm = self._optimizer_step()
                trainer.state.global_step += 1
                trainer.log({"loss": float(loss.detach()), "grad_norm": grad_norm})
                logs.append(_numeric(trainer.state.log_history[-1]))
        self._rows, self._loss_positions = {}, {}
        metrics["optimizer_steps"] = float(len(logs))
        keys = dict.fromkeys(key for log in logs for key in log)
        trl_metrics = {key: statistics.fmean(log[key] for log in logs if key in log) for key in keys}
        for key in ("loss", "grad_norm", "kl", "entropy", "clip_ratio/region_mean"):
            if key in trl_metrics:
                metrics[key] = trl_metrics[key]
        metrics |= {f"trl/{key}": value for key, value in trl_metrics.items() if key not in ("step", "epoch")}
        return metrics

    def _rollout_func(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list[Any]]:
        """TRL's rollout seam, replaying recorded episodes: each prompt is an episode id."""
        rollouts = [self._rows[str(p)] for p in prompts]
        masks = [_decisions(r.sequence) for r in rollouts]
        if any(r.sequence.allowed is not None for r in rollouts):
            for r, mask in zip(rollouts, masks, strict=True):
                allowed = r.sequence.allowed or [()] * len(mask)
                key = (*r.sequence.prompt_ids, *r.sequence.completion_ids)
                decisions = enumerate(zip(allowed, mask, strict=True))
                self._loss_positions[key] = [(k, a) for k, (a, m) in decisions if m]
        return {
            "prompt_ids": [r.sequence.prompt_ids for r in rollouts],
            "completion_ids": [r.sequence.completion_ids for r in rollouts],
            "logprobs": [r.sequence.logprobs for r in rollouts],
            "env_mask": masks,
            "episode_reward": [r.reward for r in rollouts],
        }

    def _build(self) -> None:
        if self._trainer is not None:
            return
        trl = require("trl", extra="train", feature="GRPOBackend")
        datasets = require("datasets", extra="train", feature="GRPOBackend")
        cfg, policy = self.config, self.policy
        self._output_dir = tempfile.TemporaryDirectory(prefix="dreamgym-grpo-")
        fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
        args: dict[str, Any] = {
            "output_dir": self._output_dir.name,
            "use_cpu": self.device == "cpu",
            "bf16": False,
            "fp16": False,
            "report_to": "none",
            "save_strategy": "no",
            "seed": cfg.seed,
            "learning_rate": cfg.learning_rate,
            "weight_decay": cfg.weight_decay,
            "max_grad_norm": cfg.max_grad_norm or 0.0,
            "lr_scheduler_type": "constant",
            "num_generations": cfg.group_size,
            "per_device_train_batch_size": cfg.forward_batch_size or cfg.group_size,
            "gradient_accumulation_steps": 1,
            "steps_per_generation": 1,
            "num_iterations": cfg.num_iterations,
            "temperature": policy.config.temperature,
            "beta": cfg.beta,
            "epsilon": cfg.epsilon,
            "epsilon_high": cfg.epsilon_high,
            "loss_type": cfg.loss_type,
            "scale_rewards": cfg.scale_rewards,
            "off_policy_mask_threshold": cfg.off_policy_mask_threshold,
            "mask_truncated_completions": False,
            "max_completion_length": cfg.max_completion_length,
            "shuffle_dataset": False,
            "log_completions": False,
            "disable_dropout": True,
        }
        # transformers 5 renamed gradient checkpointing; TRL turns it on by default
        args[
            "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
        ] = False
        args |= cfg.trl_args
        if "per_device_train_batch_size" not in cfg.trl_args:
            # TRL requires the generation batch to hold whole groups
            size = args["per_device_train_batch_size"]
            args["per_device_train_batch_size"] = max(cfg.group_size, size - size % cfg.group_size)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*rollout_func.*experimental", category=UserWarning)
            trainer = _constrained_grpo_trainer(trl, self._scored_positions)(
                model=policy.model,
                reward_funcs=[episode_reward],
                args=trl.GRPOConfig(**args),
                train_dataset=datasets.Dataset.from_dict({"prompt": ["replayed"]}),
                processing_class=policy.tokenizer,
                rollout_func=self._rollout_func,
                peft_config=lora_config(cfg.lora) if cfg.lora is not None else None,
            )
        transformers = require("transformers", extra="train", feature="GRPOBackend")
        for callback in (transformers.PrinterCallback, transformers.ProgressCallback):
            trainer.remove_callback(callback)  # metrics are returned, not printed
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1
        self._trainer = trainer
        self._optimizer = trainer.optimizer
        self._load_pending_optimizer_state()

    def _scored_positions(
        self, input_ids: Any, attention_mask: Any, width: int
    ) -> list[_LossPositions] | None:
        """Per row of a TRL batch, what the loss uses of its ``width`` completion positions; ``None`` when
        no row was decoded under a constraint. Rows are recognised by their tokens (TRL pads and
        shuffles them)."""
        if not self._loss_positions:
            return None
        rows: list[_LossPositions] = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            positions = self._loss_positions.get(tuple(t for t, m in zip(ids, mask, strict=True) if m))
            if positions is None:
                raise RuntimeError("GRPOBackend: TRL scored a sequence that no replayed episode produced")
            rows.append(positions)
        return rows

    def _trained_module(self) -> Any:
        return self._trainer.model if self._trainer is not None else self.policy.model

    def _state_extra(self) -> dict[str, Any]:
        step = self._trainer.state.global_step if self._trainer is not None else self._global_step
        return {"global_step": int(step)}

    def _load_extra(self, directory: Any, state: dict[str, Any]) -> None:
        self._global_step = int(state.get("global_step", 0))
        if self._trainer is not None:
            self._trainer.state.global_step = self._global_step

    _global_step: int = 0

    def close(self) -> None:
        """Remove the trainer's scratch directory (TRL requires one; nothing is written to it)."""
        if self._output_dir is not None:
            self._output_dir.cleanup()
            self._output_dir = None


_LossPositions = list[tuple[int, tuple[int, ...]]]
"""The completion positions a row's loss uses, each with the token ids decoding allowed there."""


def _constrained_grpo_trainer(trl: Any, scored_positions: Callable[[Any, Any, int], Any]) -> type:
    """``trl.GRPOTrainer`` scoring constrained tokens under the distribution they were sampled from.

    Only the positions the loss uses are projected through the LM head (as TRL's fused head avoids
    materialising every position's logits); the others score 0 and are masked out of the loss.
    """
    torch = require("torch", extra="train", feature="GRPOBackend")

    class ConstrainedGRPOTrainer(trl.GRPOTrainer):
        def _get_per_token_logps_and_entropies(
            self,
            model: Any,
            input_ids: Any,
            attention_mask: Any,
            logits_to_keep: int,
            batch_size: int | None = None,
            compute_entropy: bool = False,
            compute_aux_loss: bool = False,
            **multimodal: Any,
        ) -> tuple[Any, Any, Any]:
            rows = scored_positions(input_ids, attention_mask, logits_to_keep)
            if rows is None or compute_aux_loss or any(v is not None for v in multimodal.values()):
                return super()._get_per_token_logps_and_entropies(  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                    model,
                    input_ids,
                    attention_mask,
                    logits_to_keep,
                    batch_size,
                    compute_entropy,
                    compute_aux_loss,
                    **multimodal,
                )
            size = batch_size or input_ids.size(0)
            logps = torch.zeros(input_ids.size(0), logits_to_keep, device=input_ids.device)
            entropies = torch.zeros_like(logps) if compute_entropy else None
            first = input_ids.size(1) - logits_to_keep  # column of the first completion token
            for start in range(0, input_ids.size(0), size):
                ids = input_ids[start : start + size]
                picks = [(r, k, a) for r, row in enumerate(rows[start : start + size]) for k, a in row]
                if not picks:
                    continue
                r_idx = torch.tensor([r for r, _, _ in picks], device=ids.device)
                k_idx = torch.tensor([k for _, k, _ in picks], device=ids.device)
                with self.accelerator.autocast():  # pyright: ignore[reportUnknownMemberType]
                    hidden = model.get_decoder()(
                        input_ids=ids, attention_mask=attention_mask[start : start + size], use_cache=False
                    ).last_hidden_state
                    logits = model.get_output_embeddings()(hidden[r_idx, first + k_idx - 1])
                scores, entropy = score_tokens(
                    torch,
                    _final_logits(model, logits.float()) / self.temperature,  # pyright: ignore[reportUnknownMemberType]
                    ids[r_idx, first + k_idx],
                    [a for _, _, a in picks],
                    with_entropy=compute_entropy,
                )
                logps[start + r_idx, k_idx] = scores
                if entropies is not None:
                    entropies[start + r_idx, k_idx] = entropy.detach()
            return logps, entropies, None

    return ConstrainedGRPOTrainer


def _final_logits(model: Any, logits: Any) -> Any:
    """What a causal LM does to its LM head's output before the softmax (logit scaling, soft-capping)."""
    config = model.config.get_text_config()
    scale = getattr(config, "logit_scale", None)
    if scale is not None:
        logits = logits * scale
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = (logits / cap).tanh() * cap
    return logits


def _decisions(sequence: TokenSequence) -> list[int]:
    """The loss mask: the policy's tokens, less those constrained decoding forced (probability 1 under the
    sampling distribution, so they carry no gradient and would only dilute the token-mean loss)."""
    if sequence.allowed is None:
        return sequence.env_mask
    return [int(m and len(a) != 1) for m, a in zip(sequence.env_mask, sequence.allowed, strict=True)]


def episode_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """TRL reward function: the reward the backend computed for each replayed episode."""
    return [float(r) for r in kwargs["episode_reward"]]


def _numeric(log: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in log.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def _model_path(model: Any) -> str:
    config: Any = getattr(model, "config", None)
    return str(getattr(config, "_name_or_path", "") or "")
