"""What the RL backends share: off-loop updates, the update counter, metrics history, checkpoints."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError, UntrainableEpisodeError
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.training import _checkpoint as ckpt
from dreamgym_sdk.training.config import BackendConfig, LoraSettings
from dreamgym_sdk.types import Episode, Sample

log = get_logger(__name__)

C = TypeVar("C", bound=BackendConfig)
B = TypeVar("B")


class PolicyBackend(ABC, Generic[C, B]):
    """Base of the backends that train an :class:`HFPolicy` in place.

    ``update`` takes what ``observe`` buffered (a batch ``B``) on the event loop, trains on it in a worker
    thread (``anyio.to_thread.run_sync``) so rollouts keep flowing, and records the metrics. Training,
    ``save`` and ``load`` hold one lock, so they never overlap; optimizer steps also hold the policy's
    ``weights_lock``, so generation never sees half-written weights.
    """

    kind: str

    def __init__(self, policy: HFPolicy, config: C) -> None:
        if policy.config.temperature <= 0:
            raise ConfigError("RL needs a sampling policy: set HFPolicyConfig(temperature=...) above 0")
        self.policy = policy
        self.config = config
        self.updates = 0
        """Updates done (including those restored by ``load``)."""
        self.history: list[dict[str, float]] = []
        """The metrics of every update of this process, in order."""
        self.skipped: Counter[str] = Counter()
        """Episodes that could not be trained on, by reason (reset by each update's metrics)."""
        self._train_lock = threading.Lock()
        self._update_lock = anyio.Lock()
        self._optimizer: Any = None
        self._pending_optimizer_state: Any = None

    # -- the TrainerBackend protocol ------------------------------------------------------------------

    @abstractmethod
    async def observe(self, episode: Episode) -> None:
        """Buffer one completed episode, trained on through the :class:`Sample` of each transition.

        Raises:
            UntrainableEpisodeError: the episode cannot be trained on (unless ``skip_untrainable``).
        """

    def _samples(self, episode: Episode) -> list[Sample] | None:
        """The samples of the episode's steps, in order; ``None`` when it was skipped as untrainable."""
        if not episode.transitions:
            return self._untrainable(episode, "no_samples", "the episode has no transitions")
        missing = [t.step for t in episode.transitions if t.sample is None]
        if missing:
            return self._untrainable(
                episode,
                "no_samples",
                f"steps {missing[:5]} carry no Sample: play it with a policy that records what it sampled "
                "(HFPolicy, or LLMPolicy with record_samples=True) through a recording env",
            )
        samples = [t.sample for t in episode.transitions if t.sample is not None]
        lag = self.policy.version - min(s.policy_version for s in samples)
        limit = self.config.max_policy_lag
        if limit is not None and lag > limit:
            return self._untrainable(
                episode, "stale", f"it was sampled {lag} updates ago, above max_policy_lag={limit}"
            )
        return samples

    def _untrainable(self, episode: Episode, reason: str, detail: str) -> None:
        """Raise :class:`UntrainableEpisodeError`, or (with ``skip_untrainable``) count and log the skip."""
        if not self.config.skip_untrainable:
            raise UntrainableEpisodeError(
                f"{type(self).__name__} cannot train on episode {episode.id}: {detail} "
                "(set skip_untrainable=True in the backend config to skip such episodes)",
                episode_id=episode.id,
                reason=reason,
            )
        self.skipped[reason] += 1
        log.warning("episode skipped by the trainer", episode_id=episode.id, reason=reason, detail=detail)

    async def update(self) -> dict[str, float] | None:
        """Train on what was observed, in a worker thread; ``None`` when there is nothing to train on.

        Cancelling the caller does not interrupt a running update: it finishes, then the cancellation
        propagates.
        """
        async with self._update_lock:
            batch = self._take_batch()
            skipped, self.skipped = self.skipped, Counter[str]()
            if batch is None:
                self.skipped.update(skipped)
                return None
            started = time.perf_counter()
            metrics = await anyio.to_thread.run_sync(self._train_locked, batch)
            self.updates += 1
            metrics |= {f"skipped/{reason}": float(n) for reason, n in skipped.items()}
            metrics |= {"update": float(self.updates), "wall_time_s": time.perf_counter() - started}
            self.history.append(metrics)
            return metrics

    def _train_locked(self, batch: B) -> dict[str, float]:
        with self._train_lock:
            try:
                return self._train(batch)
            finally:
                self.policy.model.eval()

    @abstractmethod
    def _take_batch(self) -> B | None:
        """Take the next batch out of the buffer (on the event loop); ``None`` when there is none."""

    @abstractmethod
    def _train(self, batch: B) -> dict[str, float]:
        """Train on a batch (in a worker thread); return the metrics."""

    @abstractmethod
    def _build(self) -> None:
        """Build the optimizer (and whatever else training needs) if not built yet."""

    @abstractmethod
    def _trained_module(self) -> Any:
        """The module whose weights are trained (the policy model, or its PEFT wrapper)."""

    def _optimizer_step(self) -> float:
        """Clip the gradients, step the optimizer while holding the policy's weights lock, zero them."""
        torch = require("torch", extra="train", feature="RL backends")
        params = [p for group in self._optimizer.param_groups for p in group["params"]]
        norm = float("nan")
        if self.config.max_grad_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm))
        with self.policy.weights_lock:
            self._optimizer.step()
            self.policy.version += 1
        self._optimizer.zero_grad(set_to_none=True)
        return norm

    def _load_pending_optimizer_state(self) -> None:
        if self._pending_optimizer_state is not None and self._optimizer is not None:
            self._optimizer.load_state_dict(self._pending_optimizer_state)
            self._pending_optimizer_state = None

    # -- checkpoints ----------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write a checkpoint to ``directory`` atomically (a temporary sibling, then renames).

        It holds the trained weights (``weights.safetensors``, LoRA adapters included), the optimizer state,
        the update counter, the RNG states (Python, torch, the policy's sampler) and, without LoRA, a
        ``model/`` directory that :meth:`HFPolicy.from_pretrained` loads. Episodes observed but not yet
        trained on are not saved. Blocks until a running update finishes.
        """
        target = Path(directory)
        with self._train_lock, ckpt.atomic_directory(target) as tmp:
            if self.config.lora is not None:
                self._build()  # the adapters must exist for the checkpoint to load into a LoRA backend
            ckpt.save_weights(self._trained_module(), tmp / ckpt.WEIGHTS_FILE)
            optimizer = self._optimizer.state_dict() if self._optimizer is not None else None
            if optimizer is None:
                optimizer = self._pending_optimizer_state
            if optimizer is not None:
                ckpt.save_torch(optimizer, tmp / ckpt.OPTIMIZER_FILE)
            ckpt.save_torch(ckpt.rng_state(self.policy.generator), tmp / ckpt.RNG_FILE)
            self._save_extra(tmp)
            if self.config.lora is None:
                self.policy.model.save_pretrained(str(tmp / ckpt.EXPORT_DIR))
                self.policy.tokenizer.save_pretrained(str(tmp / ckpt.EXPORT_DIR))
            ckpt.write_state(
                tmp,
                {
                    "kind": self.kind,
                    "updates": self.updates,
                    "policy_version": self.policy.version,
                    "config": self.config.model_dump(mode="json"),
                    **self._state_extra(),
                },
            )

    def load(self, directory: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (weights in place, optimizer, counters, RNGs).

        Falls back to the previous checkpoint when a crash interrupted a save. Blocks until a running update
        finishes.
        """
        source = ckpt.resolve_checkpoint(Path(directory))
        with self._train_lock:
            state = ckpt.read_state(source, self.kind)
            self._build()
            with self.policy.weights_lock:
                ckpt.load_weights(self._trained_module(), source / ckpt.WEIGHTS_FILE)
            if (source / ckpt.OPTIMIZER_FILE).exists():
                self._pending_optimizer_state = ckpt.load_torch(source / ckpt.OPTIMIZER_FILE)
                self._load_pending_optimizer_state()
            ckpt.set_rng_state(ckpt.load_torch(source / ckpt.RNG_FILE), self.policy.generator)
            self._load_extra(source, state)
            self.updates = int(state["updates"])
            self.policy.version = int(state["policy_version"])
            self.policy.model.eval()

    def close(self) -> None:
        """Release scratch resources (idempotent); the policy and its weights stay usable."""

    def _save_extra(self, directory: Path) -> None:
        """Write backend-specific files into a checkpoint being saved."""

    def _load_extra(self, directory: Path, state: dict[str, Any]) -> None:
        """Read backend-specific files of a checkpoint."""

    def _state_extra(self) -> dict[str, Any]:
        """Backend-specific entries of ``state.json``."""
        return {}


def lora_config(settings: LoraSettings) -> Any:
    """A ``peft.LoraConfig`` from :class:`LoraSettings`."""
    peft = require("peft", extra="train", feature="LoRA training")
    return peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def device_of(policy: HFPolicy, config: BackendConfig) -> str:
    """The device training runs on: the configured one, which must hold the policy's model."""
    actual = str(policy.model.device)
    wanted = config.device
    if wanted is not None and wanted != actual and not actual.startswith(wanted + ":"):
        raise ConfigError(
            f"the policy's model is on {actual} but the backend is configured for {config.device}: "
            "move the model first (HFPolicy.from_pretrained(..., device=...))"
        )
    return actual
