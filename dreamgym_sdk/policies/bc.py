"""Behaviour cloning (SFT) of an :class:`~dreamgym_sdk.policies.HFPolicy` on demonstration episodes, and a
tiny policy model to start from.

**The sequences are the policy's own.** :func:`demonstration` rebuilds an episode as exactly the token
sequence a transcript-style :class:`HFPolicy` produces when it plays the episode's actions: its first prompt
(system prompt, task, initial observation), then per step the action's tokens and the end-of-turn token (as
constrained decoding emits them), then the next observation's turn, all built with the policy's own prompt
methods. This needs ``HFPolicyConfig(prompt_style="transcript", show_admissible=False)``: with the
admissible actions listed, a prompt depends on ``info``, which transitions do not record. Steps that would
not fit ``max_length`` (or the policy's ``max_prompt_tokens``) are left out: an episode is cut at a step
boundary, never inside an action.

**Training.** :func:`behaviour_clone` minimises the cross-entropy of the action tokens (the end-of-turn
token included) given everything before them; the prompt and the environment's tokens condition the
actions but are not trained on. A plain torch loop (AdamW, gradient clipping, warmup and cosine decay) in a
worker thread updates :attr:`HFPolicy.model` in place, holding :attr:`HFPolicy.weights_lock` for each
optimizer step and incrementing :attr:`HFPolicy.version`, like the RL backends. Nothing is saved: call
``policy.model.save_pretrained`` (and ``policy.tokenizer.save_pretrained``) afterwards.

**A model to clone into.** :func:`build_policy_model` builds a tiny random Llama (a few hundred thousand
parameters) with a byte-level BPE tokenizer trained on the environment's texts, the policy's fixed prompt
text as single tokens, and a chat template :class:`HFPolicy` works with; ``HFPolicy.from_pretrained`` loads
the directory.

```python
path = build_policy_model("policy-init", corpus)  # corpus: task instructions, observations, actions
policy = HFPolicy.from_pretrained(path, HFPolicyConfig(show_admissible=False, constrain_to_admissible=True))
result = await behaviour_clone(policy, expert_episodes, BCConfig(epochs=4))
policy.model.save_pretrained("policy-sft")
policy.tokenizer.save_pretrained("policy-sft")
```

Needs the ``hf`` extra (torch, transformers); nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk._imports import require
from dreamgym_sdk._stoppable import Stopped, run_stoppable
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.policies.hf import SYSTEM_PROMPT, HFPolicy
from dreamgym_sdk.types import Episode

__all__ = [
    "BCConfig",
    "BCResult",
    "Demonstration",
    "TinyPolicyConfig",
    "behaviour_clone",
    "build_policy_model",
    "demonstration",
]

_PROMPT_WORDING = ("Task:", "Observation:", "Admissible actions:")
"""The fixed words of HFPolicy's prompts (see :meth:`HFPolicy.first_turn`)."""


class TinyPolicyConfig(BaseModel):
    """Size of the tiny policy model of :func:`build_policy_model` and of its tokenizer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(default=2048, ge=300)
    """BPE vocabulary trained on the corpus (special and byte tokens included; phrase tokens come on top)."""
    hidden_size: int = Field(default=128, ge=16)
    layers: int = Field(default=3, ge=1)
    heads: int = Field(default=4, ge=1)
    """Attention heads (``hidden_size`` must be divisible by it)."""
    intermediate_size: int | None = Field(default=None, ge=1)
    """MLP width (default ``4 * hidden_size``)."""
    max_positions: int = Field(default=2048, ge=128)
    """Longest sequence the model accepts: a whole transcript (a 20-step TextWorld episode fits)."""
    prompt_phrases: tuple[str, ...] = (SYSTEM_PROMPT, *_PROMPT_WORDING)
    """Fixed prompt text added as single tokens (default: :class:`HFPolicy`'s default system prompt and the
    headers of its turns)."""
    phrase_tokens: bool = True
    """Also add the long lines that recur in the corpus as single tokens (see
    :func:`~dreamgym_sdk.distill.tiny.frequent_lines`)."""
    phrase_min_share: float = Field(default=0.1, gt=0.0, le=1.0)
    """A corpus line becomes a token when at least this share of the texts contain it."""
    phrase_min_chars: int = Field(default=8, ge=4)
    """Shortest corpus line made a token."""
    seed: int = 0
    """Seed of the random weights."""


def build_policy_model(
    directory: str | Path, corpus: Iterable[str], config: TinyPolicyConfig | None = None
) -> Path:
    """Build and save a tiny untrained Llama policy model and its tokenizer; returns ``directory``.

    The tokenizer is trained on ``corpus`` (task instructions, observations, actions: the environment's
    vocabulary) and the policy's prompt wording; its ChatML-style chat template ends assistant turns with
    the end-of-sequence token, as transcript prompts need. Deterministic: the same corpus and config give
    the same files. Blocking (trains a tokenizer): call it from a worker thread in async code. No network
    access is needed or attempted.

    Args:
        directory: where the model and tokenizer are saved (created if missing); ``HFPolicy.from_pretrained``
            loads it.
        corpus: texts of the environment the tokenizer is trained on.
        config: model and tokenizer sizes.
    """
    from dreamgym_sdk.tiny_models import build_tiny_model, frequent_lines

    cfg = config or TinyPolicyConfig()
    texts = list(corpus)
    phrases = list(cfg.prompt_phrases)
    if cfg.phrase_tokens and texts:
        phrases += frequent_lines(texts, min_share=cfg.phrase_min_share, min_chars=cfg.phrase_min_chars)
    return build_tiny_model(
        directory,
        [*texts, *_PROMPT_WORDING],
        vocab_size=cfg.vocab_size,
        hidden=cfg.hidden_size,
        layers=cfg.layers,
        heads=cfg.heads,
        intermediate=cfg.intermediate_size,
        max_positions=cfg.max_positions,
        phrases=list(dict.fromkeys(p for p in phrases if p)),
        seed=cfg.seed,
    )


@dataclass(frozen=True, slots=True)
class Demonstration:
    """An episode as the token sequence the policy produces when it plays the episode's actions.

    The layout of :class:`~dreamgym_sdk.training.TokenSequence`: ``prompt_ids + completion_ids`` is the whole
    sequence, and ``env_mask`` marks the completion tokens that are the policy's (the actions).
    """

    prompt_ids: list[int]
    """The first prompt: system prompt, task and initial observation."""
    completion_ids: list[int]
    """Every action (its tokens and the end-of-turn token) and the turns inserted between them."""
    env_mask: list[int]
    """1 at action tokens (trained on), 0 at the tokens the template and the environment inserted."""
    steps: int
    """Actions in the sequence."""
    episode_steps: int
    """Steps of the episode (more than ``steps`` when later steps did not fit)."""

    @property
    def action_tokens(self) -> int:
        """Tokens trained on."""
        return sum(self.env_mask)

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def demonstration(policy: HFPolicy, episode: Episode, *, max_length: int | None = None) -> Demonstration:
    """The token sequence ``policy`` produces when it plays ``episode``'s actions (see the module docs).

    Each action is encoded as constrained decoding emits it (its tokens, then the end-of-turn token), so a
    policy playing the same actions with ``constrain_to_admissible`` records exactly these tokens.

    Args:
        policy: a transcript-style policy that does not list admissible actions.
        episode: the demonstration; its transitions' ``state`` are the observations acted on.
        max_length: most tokens in the sequence; later steps that do not fit are left out (so is every
            step when the first does not fit: ``steps == 0``). The policy's ``max_prompt_tokens`` cuts
            too, since beyond it the policy no longer prompts with the transcript.

    Raises:
        ConfigError: the policy prompts in ``window`` style or lists the admissible actions.
    """
    cfg = policy.config
    if cfg.prompt_style != "transcript":
        raise ConfigError("behaviour cloning needs a transcript-style policy (prompt_style='transcript')")
    if cfg.show_admissible:
        raise ConfigError(
            "behaviour cloning needs HFPolicyConfig(show_admissible=False): transitions do not record the "
            "admissible actions a prompt would list"
        )
    transitions = episode.transitions
    first_state = transitions[0].state if transitions else episode.initial_state
    prompt = policy._transcript_ids(episode.task, first_state, (), {})  # pyright: ignore[reportPrivateUsage]
    limit = max_length if max_length is not None else math.inf
    prompt_limit = cfg.max_prompt_tokens if cfg.max_prompt_tokens is not None else math.inf
    completion: list[int] = []
    mask: list[int] = []
    steps = 0
    end = policy.eos_ids[0]
    for transition in transitions:
        inserted: list[int] = []
        if steps:
            turn = policy.next_turn(transition.state, {})
            inserted = policy._turn_suffix_ids(turn)  # pyright: ignore[reportPrivateUsage]
        action = [*policy._encode(transition.action), end]  # pyright: ignore[reportPrivateUsage]
        context = len(prompt) + len(completion) + len(inserted)
        if context > prompt_limit or context + len(action) > limit:
            break
        completion += [*inserted, *action]
        mask += [0] * len(inserted) + [1] * len(action)
        steps += 1
    return Demonstration(prompt, completion, mask, steps, len(transitions))


class BCConfig(BaseModel):
    """Settings of :func:`behaviour_clone`. Which episodes to clone (experts only, successful ones) is the
    caller's choice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: float = Field(default=3.0, gt=0)
    """Passes over the episodes (ignored when ``max_steps`` is set)."""
    max_steps: int | None = Field(default=None, ge=1)
    """Optimizer steps to take, overriding ``epochs``."""
    batch_size: int = Field(default=8, ge=1)
    """Episodes per optimizer step."""
    learning_rate: float = Field(default=1e-3, gt=0)
    """Peak learning rate: suits a tiny model trained from scratch; a pretrained model wants ~1e-5."""
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)
    """Share of the steps over which the learning rate rises linearly from 0."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """After warmup: cosine decay to 0, or constant."""
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    """Clip the gradient norm to this (``None``: no clipping)."""
    max_length: int | None = Field(default=None, ge=2)
    """Most tokens per episode sequence; later steps are left out. ``None``: the model's
    ``max_position_embeddings``."""
    seed: int = 0
    """Seed of the episode order."""
    progress: bool = True
    """Show a progress bar (only on a terminal)."""


@dataclass(frozen=True, slots=True)
class BCResult:
    """What :func:`behaviour_clone` did."""

    losses: tuple[float, ...]
    """Per optimizer step, in order: the mean cross-entropy of the batch's action tokens."""
    step_tokens: tuple[int, ...]
    """Per optimizer step: the action tokens trained on."""
    episodes: int
    """Episodes trained on."""
    skipped: int
    """Episodes left out: no transitions, or the first action does not fit ``max_length``."""
    cut: int
    """Episodes whose later steps were left out to fit ``max_length`` (or ``max_prompt_tokens``)."""
    action_tokens: int
    """Action tokens of the episodes trained on (one pass)."""
    tokens: int
    """All tokens of the episodes trained on (one pass)."""
    seconds: float
    """Wall time, tokenizing included."""

    @property
    def steps(self) -> int:
        """Optimizer steps taken."""
        return len(self.losses)

    @property
    def final_loss(self) -> float:
        """The loss of the last step (``nan`` with no step)."""
        return self.losses[-1] if self.losses else math.nan


async def behaviour_clone(
    policy: HFPolicy, episodes: Sequence[Episode], config: BCConfig | None = None
) -> BCResult:
    """Train ``policy``'s model in place to reproduce the actions of ``episodes`` (behaviour cloning).

    Tokenizing and training run in a worker thread, off the event loop; cancelling the caller stops them
    after the step in hand (the weights then hold the steps taken). ``act`` may run meanwhile: it never
    sees half-written weights.

    Args:
        policy: a transcript-style policy with ``show_admissible=False`` (see :func:`demonstration`).
        episodes: the demonstrations.
        config: training settings.

    Raises:
        ConfigError: the policy's prompts cannot be rebuilt from transitions, or no episode has a step
            that fits ``max_length``.
        MissingExtraError: torch or transformers is not installed.
    """
    cfg = config or BCConfig()
    demonstrations = list(episodes)
    return await run_stoppable(lambda stop: _clone(policy, demonstrations, cfg, stop))


def _clone(policy: HFPolicy, episodes: list[Episode], cfg: BCConfig, stop: threading.Event) -> BCResult:
    torch = require("torch", extra="hf", feature="behaviour cloning")
    started = time.perf_counter()
    model = policy.model
    max_length = cfg.max_length
    if max_length is None:
        positions: Any = getattr(model.config, "max_position_embeddings", None)
        max_length = int(positions) if positions is not None else None
    demos = [demonstration(policy, episode, max_length=max_length) for episode in episodes]
    kept = [d for d in demos if d.steps]
    if not kept:
        raise ConfigError(
            f"none of the {len(episodes)} episodes has a step to clone within {max_length} tokens"
        )
    per_epoch = math.ceil(len(kept) / cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    warmup = int(cfg.warmup_ratio * total)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    transformers = require("transformers", extra="hf", feature="behaviour cloning")
    scheduler = transformers.get_scheduler(
        "cosine" if cfg.schedule == "cosine" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=total,
    )
    pad = int(policy.tokenizer.pad_token_id)
    losses: list[float] = []
    step_tokens: list[int] = []
    model.eval()  # no dropout: the tokens are scored as the policy samples them
    with _Progress(cfg.progress, total) as progress:
        for batch in _batches(kept, cfg.batch_size, total, random.Random(cfg.seed)):
            if stop.is_set():
                raise Stopped
            ids, attention, targets = _tensors(torch, batch, pad, model.device)
            logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
            trained = targets != -100
            loss = torch.nn.functional.cross_entropy(logits[trained], targets[trained])
            loss.backward()
            if cfg.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            with policy.weights_lock:
                optimizer.step()
                policy.version += 1
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            losses.append(float(loss.detach()))
            step_tokens.append(int(trained.sum()))
            progress.advance(losses[-1])
    return BCResult(
        losses=tuple(losses),
        step_tokens=tuple(step_tokens),
        episodes=len(kept),
        skipped=len(demos) - len(kept),
        cut=sum(0 < d.steps < d.episode_steps for d in demos),
        action_tokens=sum(d.action_tokens for d in kept),
        tokens=sum(len(d) for d in kept),
        seconds=time.perf_counter() - started,
    )


def _batches(
    demos: list[Demonstration], size: int, total: int, rng: random.Random
) -> Iterator[list[Demonstration]]:
    """``total`` batches: epochs of shuffled demonstrations, each epoch's batches of similar lengths (less
    padding), in random order."""
    made = 0
    while True:
        order = list(demos)
        rng.shuffle(order)
        window = size * 16  # sort by length within windows of a few batches
        batches: list[list[Demonstration]] = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=len)
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        rng.shuffle(batches)
        for batch in batches:
            if made == total:
                return
            made += 1
            yield batch


def _tensors(torch: Any, batch: list[Demonstration], pad: int, device: Any) -> tuple[Any, Any, Any]:
    """Right-padded input ids, attention mask and next-token targets (-100 where not trained)."""
    width = max(len(d) for d in batch)
    ids: list[list[int]] = []
    attention: list[list[int]] = []
    targets: list[list[int]] = []
    for d in batch:
        row = d.prompt_ids + d.completion_ids
        fill = width - len(row)
        labels = [-100] * len(d.prompt_ids) + [
            t if m else -100 for t, m in zip(d.completion_ids, d.env_mask, strict=True)
        ]
        ids.append(row + [pad] * fill)
        attention.append([1] * len(row) + [0] * fill)
        targets.append(labels[1:] + [-100] * fill)
    return (
        torch.tensor(ids, device=device),
        torch.tensor(attention, device=device),
        torch.tensor(targets, device=device),
    )


class _Progress:
    """A rich progress bar with the latest loss, only on a terminal (and not inside another live display)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and os.isatty(2)
        self.total = total
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.errors import LiveError
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            progress = Progress(
                TextColumn("[bold]behaviour cloning[/]"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[loss]}"), console=Console(stderr=True),
            )  # fmt: skip
            try:
                progress.start()
            except LiveError:  # the caller shows its own live display
                return self
            self._progress = progress
            self._task = progress.add_task("bc", total=self.total, loss="")
        return self

    def advance(self, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=f"loss {loss:.3f}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
