"""Turn-level PPO with a value head, in plain torch (TRL 1.x no longer ships a PPO trainer or value-head
models, so nothing of TRL fits here).

Each step of an episode is one sample: the prompt the policy saw, the action tokens it sampled and their
recorded log-probabilities. A small value head (one linear layer) reads the policy's last hidden state at
the last prompt token, i.e. the state the action was chosen in. Per-step rewards come from the
transitions; advantages are GAE over the steps of each episode (``gamma``, ``gae_lambda``; 0 after a
terminated episode, and also after a truncated one: the state after the last step was never prompted, so
its value is unknown and taken as 0). Every action token of a step shares the step's advantage.

The loss per minibatch is the clipped surrogate on token ratios ``π_θ / π_behaviour`` (the behaviour
log-probs are the recorded ones, so episodes sampled during an earlier update are corrected for),
averaged over action tokens, plus ``vf_coef`` × the (clipped) value loss, minus ``ent_coef`` × the
entropy, plus ``kl_beta`` × the k3 KL estimate against a frozen reference. Dropout stays off (the model is
kept in eval mode) so training scores tokens exactly as sampling did.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamgym_sdk._imports import require
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.training import _checkpoint as ckpt
from dreamgym_sdk.training._backend import PolicyBackend, device_of, lora_config
from dreamgym_sdk.training._scoring import score_tokens
from dreamgym_sdk.training.config import PPOBackendConfig
from dreamgym_sdk.training.sequences import gae
from dreamgym_sdk.types import Episode, Sample

__all__ = ["PPOBackend"]

VALUE_HEAD_FILE = "value_head.safetensors"


@dataclass(frozen=True, slots=True)
class _Observed:
    episode: Episode
    samples: list[Sample]


@dataclass(slots=True)
class _Step:
    sample: Sample
    reward: float
    old_value: float = 0.0
    advantage: float = 0.0
    ret: float = 0.0
    ref_logprobs: Any = None


class PPOBackend(PolicyBackend[PPOBackendConfig, list[_Observed]]):
    """Trains an :class:`HFPolicy` in place with turn-level PPO (GAE, value head, clipped surrogate).

    ```python
    backend = PPOBackend(policy, PPOBackendConfig(learning_rate=1e-5, gamma=0.99))
    attach_trainer(bus, backend)
    ...
    metrics = await backend.update()
    ```

    Args:
        policy: the policy trained in place (the episodes' samples must come from its model).
        config: PPO settings.
    """

    kind = "ppo"

    def __init__(self, policy: HFPolicy, config: PPOBackendConfig | None = None) -> None:
        super().__init__(policy, config or PPOBackendConfig())
        self.device = device_of(policy, self.config)
        self._pending: list[_Observed] = []
        self._module: Any = None
        self._value_head: Any = None
        self._reference: Any = None

    @property
    def value_head(self) -> Any:
        """The value head (``torch.nn.Linear(hidden, 1)``; ``None`` until the first update or ``load``)."""
        return self._value_head

    async def observe(self, episode: Episode) -> None:
        """Buffer the episode with the sample of each of its steps.

        Raises:
            UntrainableEpisodeError: the episode cannot be trained on (unless ``skip_untrainable``).
        """
        samples = self._samples(episode)
        if samples is not None:
            self._pending.append(_Observed(episode, samples))

    def _take_batch(self) -> list[_Observed] | None:
        batch, self._pending = self._pending, []
        return batch or None

    # -- training, in a worker thread -----------------------------------------------------------------

    def _train(self, batch: list[_Observed]) -> dict[str, float]:
        torch = require("torch", extra="train", feature="PPOBackend")
        cfg = self.config
        self._build()
        episodes: list[list[_Step]] = [
            [_Step(s, t.reward) for s, t in zip(o.samples, o.episode.transitions, strict=True)] for o in batch
        ]
        steps = [step for episode in episodes for step in episode]
        lag = statistics.fmean(self.policy.version - s.sample.policy_version for s in steps)
        with torch.no_grad():
            for chunk in _chunks(steps, cfg.minibatch_size or len(steps)):
                scored = self._score(self._module, [s.sample for s in chunk], with_values=True)
                for step, value in zip(chunk, scored.values.tolist(), strict=True):
                    step.old_value = float(value)
                if cfg.kl_beta > 0:
                    ref = self._score_reference([s.sample for s in chunk])
                    for i, step in enumerate(chunk):
                        step.ref_logprobs = ref.logprobs[i]
        raw_advantages: list[float] = []
        for episode in episodes:
            advantages, returns = gae(
                [s.reward for s in episode],
                [s.old_value for s in episode],
                gamma=cfg.gamma,
                lam=cfg.gae_lambda,
            )
            for step, a, r in zip(episode, advantages, returns, strict=True):
                step.advantage, step.ret = a, r
            raw_advantages += advantages
        if cfg.normalize_advantages and len(steps) > 1:
            mean, std = statistics.fmean(raw_advantages), statistics.pstdev(raw_advantages)
            for step in steps:
                step.advantage = (step.advantage - mean) / (std + 1e-8)
        totals: dict[str, list[float]] = {}
        rng = random.Random(cfg.seed + self.updates)
        for _ in range(cfg.epochs):
            order = steps[:]
            rng.shuffle(order)
            for chunk in _chunks(order, cfg.minibatch_size or len(order)):
                for key, value in self._minibatch(chunk).items():
                    totals.setdefault(key, []).append(value)
        rewards = [o.episode.total_reward for o in batch]
        returns = [s.ret for s in steps]
        values = [s.old_value for s in steps]
        metrics = {key: statistics.fmean(v) for key, v in totals.items()}
        metrics |= {
            "episodes": float(len(batch)),
            "steps": float(len(steps)),
            "mean_reward": statistics.fmean(rewards),
            "reward_std": statistics.pstdev(rewards),
            "advantage_mean": statistics.fmean(raw_advantages),
            "advantage_std": statistics.pstdev(raw_advantages),
            "advantage_min": min(raw_advantages),
            "advantage_max": max(raw_advantages),
            "value_mean": statistics.fmean(values),
            "explained_variance": _explained_variance(values, returns),
            "policy_tokens": float(sum(len(s.sample.completion_ids) for s in steps)),
            "optimizer_steps": float(len(totals.get("loss", []))),
            "policy_lag": lag,
        }
        return metrics

    def _minibatch(self, chunk: list[_Step]) -> dict[str, float]:
        torch = require("torch", extra="train", feature="PPOBackend")
        cfg = self.config
        scored = self._score(self._module, [s.sample for s in chunk], with_values=True, with_entropy=True)
        mask = scored.mask
        old = _pad_rows(torch, [list(s.sample.logprobs) for s in chunk], mask)
        adv = torch.tensor([s.advantage for s in chunk], device=mask.device)[:, None]
        log_ratio = (scored.token_logprobs - old) * mask
        ratio = torch.exp(log_ratio)
        clipped = torch.clamp(ratio, 1 - cfg.clip_range, 1 + cfg.clip_range)
        per_token = -torch.min(ratio * adv, clipped * adv)
        n_tokens = mask.sum().clamp(min=1.0)
        policy_loss = (per_token * mask).sum() / n_tokens
        returns = torch.tensor([s.ret for s in chunk], device=mask.device)
        old_values = torch.tensor([s.old_value for s in chunk], device=mask.device)
        value_loss = (scored.values - returns) ** 2
        if cfg.value_clip_range is not None:
            v_clipped = old_values + torch.clamp(
                scored.values - old_values, -cfg.value_clip_range, cfg.value_clip_range
            )
            value_loss = torch.max(value_loss, (v_clipped - returns) ** 2)
        value_loss = 0.5 * value_loss.mean()
        entropy = (scored.entropy * mask).sum() / n_tokens
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        out: dict[str, float] = {}
        if cfg.kl_beta > 0:
            ref = _pad_rows(torch, [s.ref_logprobs.tolist() for s in chunk], mask)
            delta = (ref - scored.token_logprobs) * mask
            kl = ((torch.exp(delta) - delta - 1) * mask).sum() / n_tokens
            loss = loss + cfg.kl_beta * kl
            out["kl"] = float(kl.detach())
        loss.backward()
        grad_norm = self._optimizer_step()
        with torch.no_grad():
            approx_kl = (((ratio - 1) - log_ratio) * mask).sum() / n_tokens
            clip_fraction = (((ratio - 1).abs() > cfg.clip_range).float() * mask).sum() / n_tokens
        out |= {
            "loss": float(loss.detach()),
            "policy_loss": float(policy_loss.detach()),
            "value_loss": float(value_loss.detach()),
            "entropy": float(entropy.detach()),
            "approx_kl": float(approx_kl),
            "clip_fraction": float(clip_fraction),
        }
        if not math.isnan(grad_norm):
            out["grad_norm"] = grad_norm
        return out

    def _score(
        self, module: Any, samples: Sequence[Sample], *, with_values: bool, with_entropy: bool = False
    ) -> _Scored:
        """Log-probs of the completion tokens (temperature-scaled, as sampled), values, entropies."""
        torch = require("torch", extra="train", feature="PPOBackend")
        pad = int(self.policy.tokenizer.pad_token_id)
        rows = [[*s.prompt_ids, *s.completion_ids] for s in samples]
        width = max(len(r) for r in rows)
        device = self.policy.model.device
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        out = module(input_ids=input_ids, attention_mask=attention, output_hidden_states=with_values)
        logits = out.logits[:, :-1].float() / self.policy.config.temperature
        # position j of the shifted tensors predicts token j + 1: completions start at prompt length - 1
        allowed: list[tuple[int, ...]] = []
        mask = torch.zeros(logits.shape[:2], device=device)
        for i, s in enumerate(samples):
            start = len(s.prompt_ids) - 1
            mask[i, start : start + len(s.completion_ids)] = 1.0
            row: list[tuple[int, ...]] = [()] * logits.size(1)
            row[start : start + len(s.allowed)] = s.allowed
            allowed += row
        token_logprobs, entropy = score_tokens(
            torch,
            logits.reshape(-1, logits.size(-1)),
            input_ids[:, 1:].reshape(-1),
            allowed,
            with_entropy=with_entropy,
        )
        token_logprobs = token_logprobs.view(mask.shape)
        entropy = entropy.view(mask.shape) if entropy is not None else None
        values = None
        if with_values:
            hidden = out.hidden_states[-1]
            last_prompt = torch.tensor([len(s.prompt_ids) - 1 for s in samples], device=device)
            state = hidden[torch.arange(len(samples), device=device), last_prompt].float()
            values = self._value_head(state).squeeze(-1)
        return _Scored(token_logprobs * mask, mask, values, entropy)

    def _score_reference(self, samples: Sequence[Sample]) -> _Scored:
        if self._reference is not None:
            return self._score(self._reference, samples, with_values=False)
        with self._module.disable_adapter():  # LoRA: the base model is the reference
            return self._score(self._module, samples, with_values=False)

    def _build(self) -> None:
        if self._module is not None:
            return
        torch = require("torch", extra="train", feature="PPOBackend")
        cfg, model = self.config, self.policy.model
        torch.manual_seed(cfg.seed)
        module = model
        if cfg.lora is not None:
            peft = require("peft", extra="train", feature="LoRA training")
            module = peft.get_peft_model(model, lora_config(cfg.lora))
        elif cfg.kl_beta > 0:
            self._reference = copy.deepcopy(model).eval().requires_grad_(False)
        hidden = int(model.config.get_text_config().hidden_size)
        head = torch.nn.Linear(hidden, 1).to(model.device)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        self._value_head = head
        self._module = module
        module.eval()  # no dropout: score tokens exactly as sampled
        policy_params = [p for p in module.parameters() if p.requires_grad]
        self._optimizer = torch.optim.AdamW(
            [
                {"params": policy_params, "lr": cfg.learning_rate},
                {"params": list(head.parameters()), "lr": cfg.value_learning_rate},
            ],
            weight_decay=cfg.weight_decay,
        )
        self._load_pending_optimizer_state()

    def _trained_module(self) -> Any:
        return self._module if self._module is not None else self.policy.model

    def _save_extra(self, directory: Path) -> None:
        if self._value_head is not None:
            ckpt.save_weights(self._value_head, directory / VALUE_HEAD_FILE)

    def _load_extra(self, directory: Path, state: dict[str, Any]) -> None:
        if (directory / VALUE_HEAD_FILE).exists():
            ckpt.load_weights(self._value_head, directory / VALUE_HEAD_FILE)


@dataclass(frozen=True, slots=True)
class _Scored:
    token_logprobs: Any
    """``(batch, width - 1)``: log-prob of each next token, zero outside completions."""
    mask: Any
    """1.0 at completion tokens."""
    values: Any
    entropy: Any

    @property
    def logprobs(self) -> list[Any]:
        """Per row, the completion tokens' log-probs (1-D tensors)."""
        return [row[m.bool()] for row, m in zip(self.token_logprobs, self.mask, strict=True)]


def _pad_rows(torch: Any, rows: list[list[float]], mask: Any) -> Any:
    """Place each row's values at its completion positions in a tensor shaped like ``mask``."""
    out = torch.zeros_like(mask)
    for i, values in enumerate(rows):
        positions = mask[i].nonzero().squeeze(-1)
        out[i, positions] = torch.tensor(values, dtype=out.dtype, device=out.device)
    return out


def _chunks(items: list[_Step], size: int) -> list[list[_Step]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _explained_variance(values: list[float], returns: list[float]) -> float:
    if len(returns) < 2:
        return 0.0
    var = statistics.pvariance(returns)
    if var == 0:
        return 0.0
    return 1.0 - statistics.pvariance([r - v for r, v in zip(returns, values, strict=True)]) / var
