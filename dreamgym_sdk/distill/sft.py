"""Distillation: TRL SFT of a causal LM on the experience model's prompts and the contract's JSON answers.

:func:`distill` takes the examples of :func:`~dreamgym_sdk.distill.build_dataset` and trains a student:

- by default (no ``base_model``) the tiny Llama of :func:`~dreamgym_sdk.distill.build_student`, with a
  tokenizer trained on the data, sized to train in minutes on a CPU;
- or any Hugging Face causal LM (``base_model``: a path or hub id), fully or with LoRA adapters (``lora``,
  needs ``peft``), merged into the weights at the end.

The loss is on the assistant's JSON only (TRL's prompt-completion format; ``assistant_only_loss`` too
when the chat template marks generations): reasoning, next state, reward, done and success given the
prompt, the paper's joint objective. Examples longer than ``max_length`` tokens are left out, never
truncated (a cut target would teach the model to stop mid-object).

The output directory holds the model and tokenizer (load it as ``hf:<dir>``), the model card
``dreamgym_experience.json`` with the prompt settings the model was trained on, and ``replay.jsonl``, the
training transitions that ground its answers (see :func:`~dreamgym_sdk.distill.open_experience_model`).
Needs the ``train`` extra (torch, transformers, trl, datasets; peft for LoRA).
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk._imports import require
from dreamgym_sdk._stoppable import Stopped, run_stoppable
from dreamgym_sdk.distill.card import CARD_FILE, REPLAY_FILE, DistilledModelCard, TrainingSummary
from dreamgym_sdk.distill.dataset import DatasetConfig, DistillDataset, SFTExample
from dreamgym_sdk.distill.tiny import StudentConfig, build_student
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.logging import get_logger

__all__ = ["DistillConfig", "DistillResult", "TrainingProgress", "distill", "distill_sync"]

_log = get_logger(__name__)


class DistillConfig(BaseModel):
    """Settings of :func:`distill`; every field is a ``dreamgym distill train`` flag. The defaults train
    the tiny CPU student."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_model: str | None = None
    """A Hugging Face causal LM (path or hub id) to fine-tune; ``None`` builds the tiny student."""
    student: StudentConfig = Field(default_factory=StudentConfig)
    """Size of the tiny student and its tokenizer (ignored with ``base_model``)."""
    epochs: float | None = Field(default=None, gt=0)
    """Passes over the training examples (ignored when ``max_steps`` is set); default 5 for the tiny
    student trained from scratch, 2 for a pretrained model."""
    max_steps: int | None = Field(default=None, ge=1)
    """Optimizer steps to take, overriding ``epochs``."""
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    """Gradient accumulation steps (effective batch ``batch_size * grad_accum``)."""
    learning_rate: float | None = Field(default=None, gt=0)
    """Peak learning rate; default 2e-3 for the tiny student trained from scratch, 1e-4 with LoRA, 2e-5
    for full fine-tuning of a pretrained model."""
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    scheduler: str = "cosine"
    """Learning-rate schedule (any ``transformers`` scheduler name)."""
    warmup_lm_steps: int | None = Field(default=None, ge=0)
    """Of the steps, how many come first and are trained on the whole text, prompt included, before the
    paper's objective (loss on the answer only). A tiny student from scratch learns the state language and
    to copy from its prompt much sooner this way. Default: a tenth of the steps for the tiny student, none
    for a pretrained model."""
    max_length: int = Field(default=4096, ge=64)
    """Examples with more tokens (prompt and answer) are left out."""
    lora: bool = False
    """Train LoRA adapters (needs ``peft``) and merge them at the end."""
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    use_cpu: bool | None = None
    """Train on the CPU; ``None`` uses a GPU when there is one."""
    bf16: bool = False
    """bfloat16 mixed precision (GPUs)."""
    gradient_checkpointing: bool = False
    eval_steps: int | None = Field(default=None, ge=1)
    """Evaluate the validation loss every this many steps (at the end only when ``None``)."""
    logging_steps: int = Field(default=10, ge=1)
    max_train_seconds: float | None = Field(default=None, gt=0)
    """Stop training after this much wall time (the model trained so far is kept)."""
    seed: int = 0


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """A progress report from the trainer (``on_progress`` of :func:`distill`)."""

    step: int
    total_steps: int
    loss: float | None
    """The latest logged training loss."""
    eval_loss: float | None
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class DistillResult:
    """What :func:`distill` produced."""

    path: Path
    """The model directory (``hf:<path>`` loads it)."""
    card: DistilledModelCard


def _learning_rate(config: DistillConfig) -> float:
    if config.learning_rate is not None:
        return config.learning_rate
    if config.base_model is None:
        return 2e-3
    return 1e-4 if config.lora else 2e-5


def _records(examples: Sequence[SFTExample], tokenizer: Any, max_length: int) -> tuple[list[Any], int]:
    """The TRL records of the examples that fit in ``max_length`` tokens, and how many did not."""
    kept: list[Any] = []
    for example in examples:
        text = tokenizer.apply_chat_template(example.prompt + example.completion, tokenize=False)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_length:
            kept.append(example.trl_record())
    return kept, len(examples) - len(kept)


def distill_sync(
    dataset: DistillDataset,
    out_dir: str | Path,
    *,
    config: DistillConfig | None = None,
    dataset_config: DatasetConfig | None = None,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> DistillResult:
    """:func:`distill`, blocking the calling thread (scripts and the CLI). Once ``stop`` is set, it raises
    :class:`~dreamgym_sdk._stoppable.Stopped` at the end of the step in hand, writing no model or card."""
    cfg = config or DistillConfig()
    dcfg = dataset_config or DatasetConfig()
    if not dataset.train:
        raise ConfigError("the dataset has no training examples")
    torch = require("torch", extra="train", feature="distillation")
    transformers = require("transformers", extra="train", feature="distillation")
    trl = require("trl", extra="train", feature="distillation")
    datasets = require("datasets", extra="train", feature="distillation")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    transformers.set_seed(cfg.seed)

    if cfg.base_model is None:
        build_student(out, [*dataset.train, *dataset.valid], cfg.student)
        model_path = str(out)
    else:
        model_path = cfg.base_model
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{model_path} has no chat template: the experience prompts are chat messages")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.bfloat16 if cfg.bf16 else torch.float32
    )

    train_records, dropped = _records(dataset.train, tokenizer, cfg.max_length)
    valid_records, dropped_valid = _records(dataset.valid, tokenizer, cfg.max_length)
    if not train_records:
        raise ConfigError(f"every training example is longer than max_length={cfg.max_length} tokens")
    if dropped:
        _log.warning("examples longer than max_length left out", dropped=dropped, max_length=cfg.max_length)
    train_data = datasets.Dataset.from_list(train_records)
    valid_data = datasets.Dataset.from_list(valid_records) if valid_records else None

    use_cpu = cfg.use_cpu if cfg.use_cpu is not None else not torch.cuda.is_available()
    steps_per_epoch = math.ceil(len(train_records) / (cfg.batch_size * cfg.grad_accum))
    epochs = cfg.epochs if cfg.epochs is not None else (5.0 if cfg.base_model is None else 2.0)
    total_steps = cfg.max_steps or max(1, math.ceil(epochs * steps_per_epoch))
    peft_config: Any = None
    if cfg.lora:
        peft = require("peft", extra="train", feature="LoRA distillation")
        peft_config = peft.LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    wanted = cfg.warmup_lm_steps
    if wanted is None:
        wanted = total_steps // 10 if cfg.base_model is None else 0
    warmup_lm = min(wanted, total_steps - 1)
    progress = _ProgressCallback(transformers, total_steps, started, on_progress, cfg.max_train_seconds, stop)
    phase = _Phase(trl, datasets, tokenizer, cfg, use_cpu, out / "_trainer", train_data, valid_data, progress)
    trainer: Any = None
    if warmup_lm:
        trainer = phase.run(model, warmup_lm, answer_only=False, peft_config=peft_config, schedule="constant")
        model, peft_config = trainer.model, None
        progress.offset = warmup_lm
    trainer = phase.run(
        model, total_steps - warmup_lm, answer_only=True, peft_config=peft_config, schedule=cfg.scheduler
    )
    train_loss = progress.loss_sum / max(progress.loss_count, 1)
    eval_loss: float | None = None
    if valid_data is not None:
        eval_loss = float(trainer.evaluate()["eval_loss"])
    trained: Any = trainer.model
    if cfg.lora:
        trained = trained.merge_and_unload()
    trained.generation_config.pad_token_id = tokenizer.pad_token_id
    trained.generation_config.eos_token_id = tokenizer.eos_token_id
    trained.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "_trainer", ignore_errors=True)

    (out / REPLAY_FILE).write_text(
        "".join(t.model_dump_json() + "\n" for t in dataset.replay), encoding="utf-8"
    )
    summary = TrainingSummary(
        examples=len(train_records),
        valid_examples=len(valid_records),
        dropped_too_long=dropped + dropped_valid,
        train_tasks=len(dataset.train_tasks),
        valid_tasks=len(dataset.valid_tasks),
        steps=progress.offset + int(trainer.state.global_step),
        planned_steps=total_steps,
        lm_warmup_steps=warmup_lm,
        train_loss=train_loss,
        final_loss=progress.last_loss,
        eval_loss=eval_loss,
        parameters=int(sum(p.numel() for p in trained.parameters())),
        seconds=time.perf_counter() - started,
        variants={v: sum(e.variant == v for e in dataset.train) for v in dcfg.ablation_mix},
    )
    card = DistilledModelCard(
        base_model=cfg.base_model,
        dataset=dcfg,
        distill=cfg.model_dump(mode="json"),
        training=summary,
    )
    (out / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return DistillResult(out, card)


async def distill(
    dataset: DistillDataset,
    out_dir: str | Path,
    *,
    config: DistillConfig | None = None,
    dataset_config: DatasetConfig | None = None,
    on_progress: Callable[[TrainingProgress], None] | None = None,
) -> DistillResult:
    """Train a distilled experience model on ``dataset`` and save it to ``out_dir``.

    Training runs in a worker thread, off the event loop (cancelling the caller does not stop it early:
    use ``max_train_seconds``).

    ```python
    result = await distill(dataset, "my-experience-model", dataset_config=dataset_config)
    provider = get_provider(f"hf:{result.path}")
    ```

    Args:
        dataset: the examples (from :func:`~dreamgym_sdk.distill.build_dataset`) and the replay data.
        out_dir: where the model, its card and its replay data are written.
        config: student and training settings.
        dataset_config: the settings the examples were built with (recorded in the card, so the model is
            asked with the same prompts).
        on_progress: called from the training thread at every logging step.

    Raises:
        ConfigError: no training examples, none short enough, or a base model without a chat template.
        MissingExtraError: the ``train`` extra is not installed.
    """
    return await run_stoppable(
        lambda stop: distill_sync(
            dataset, out_dir, config=config, dataset_config=dataset_config, on_progress=on_progress, stop=stop
        )
    )


class _Phase:
    """Runs one SFT phase (a fresh ``SFTTrainer``) on the shared model."""

    def __init__(
        self,
        trl: Any,
        datasets: Any,
        tokenizer: Any,
        cfg: DistillConfig,
        use_cpu: bool,
        work_dir: Path,
        train_data: Any,
        valid_data: Any,
        progress: _ProgressCallback,
    ) -> None:
        self.trl, self.datasets, self.tokenizer, self.cfg, self.use_cpu = (
            trl,
            datasets,
            tokenizer,
            cfg,
            use_cpu,
        )
        self.work_dir, self.train_data, self.valid_data, self.progress = (
            work_dir,
            train_data,
            valid_data,
            progress,
        )
        self.has_markers = "generation" in str(tokenizer.chat_template)

    def run(self, model: Any, steps: int, *, answer_only: bool, peft_config: Any, schedule: str) -> Any:
        """Train ``model`` for ``steps`` optimizer steps; the loss is on the answer only, or on
        everything; returns the trainer."""
        cfg = self.cfg
        args = self.trl.SFTConfig(
            output_dir=str(self.work_dir),
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            max_steps=steps,
            learning_rate=_learning_rate(cfg),
            lr_scheduler_type=schedule if schedule != "constant" else "constant_with_warmup",
            warmup_steps=int(cfg.warmup_ratio * steps),
            weight_decay=cfg.weight_decay,
            logging_steps=cfg.logging_steps,
            save_strategy="no",
            eval_strategy="no" if self.valid_data is None or cfg.eval_steps is None else "steps",
            eval_steps=cfg.eval_steps,
            report_to="none",
            use_cpu=self.use_cpu,
            bf16=cfg.bf16,
            max_length=None,
            completion_only_loss=answer_only,
            assistant_only_loss=answer_only and self.has_markers,
            train_sampling_strategy="group_by_length",
            log_level="warning",
            seed=cfg.seed,
            disable_tqdm=True,
            dataloader_num_workers=0,
            activation_checkpointing=cfg.gradient_checkpointing,  # TRL's default would turn it on
        )
        bars_were_on = not self.datasets.are_progress_bars_disabled()
        self.datasets.disable_progress_bars()  # the tokenizing bars would drown the progress reports
        try:
            trainer = self.trl.SFTTrainer(
                model=model,
                args=args,
                train_dataset=self.train_data,
                eval_dataset=self.valid_data if answer_only else None,
                processing_class=self.tokenizer,
                peft_config=peft_config,
                callbacks=[self.progress],
            )
        finally:
            if bars_were_on:
                self.datasets.enable_progress_bars()
        trainer.remove_callback(self.progress.printer)  # progress goes to on_progress, not stdout
        trainer.train()
        return trainer


def _ignore(*args: Any, **kwargs: Any) -> None:
    """A trainer event this callback does not handle."""


class _ProgressCallback:
    """Reports progress, remembers the last loss and enforces ``max_train_seconds``."""

    def __init__(
        self,
        transformers: Any,
        total: int,
        started: float,
        report: Callable[[TrainingProgress], None] | None,
        max_seconds: float | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop
        self.printer: Any = transformers.PrinterCallback
        self.total = total
        self.started = started
        self.report = report
        self.max_seconds = max_seconds
        self.last_loss: float | None = None
        self.last_eval: float | None = None
        self.offset = 0
        """Steps of the earlier phases."""
        self.loss_sum = 0.0
        self.loss_count = 0

    def __getattr__(self, name: str) -> Any:
        # Every other TrainerCallback event is a no-op.
        if name.startswith("on_"):
            return _ignore
        raise AttributeError(name)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.last_loss = float(logs["loss"])
            self.loss_sum += self.last_loss
            self.loss_count += 1
        if "eval_loss" in logs:
            self.last_eval = float(logs["eval_loss"])
        if self.report is not None:
            elapsed = time.perf_counter() - self.started
            step = self.offset + int(state.global_step)
            self.report(TrainingProgress(step, self.total, self.last_loss, self.last_eval, elapsed))

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        if self.max_seconds is not None and time.perf_counter() - self.started > self.max_seconds:
            control.should_training_stop = True
