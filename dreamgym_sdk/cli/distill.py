"""``dreamgym distill``: annotate real transitions, build SFT examples and distil an experience model.

```
dreamgym distill annotate real.jsonl --games-from tw_games -o annotated.jsonl
dreamgym distill train annotated.jsonl -o my-experience-model
```

``annotate`` writes the transitions with their reasoning traces, the annotations' provenance next to them
(``annotated.annotations.jsonl``) and, with ``--games-from``, the games' tasks (``annotated.tasks.jsonl``).
``train`` builds the examples (``--k``, ``--history-window``, ...: the :class:`DatasetConfig` fields) and
trains (``--max-steps``, ``--hidden-size``, ...: the :class:`DistillConfig` fields); ``--config FILE``
(JSON or TOML with ``[dataset]``, ``[distill]`` and ``[distill.student]`` tables) sets any of them, and
flags override the file. ``dataset`` writes the SFT examples without training, for inspection.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dreamgym_sdk.cli._options import command_group, run_async
from dreamgym_sdk.config_files import read_config_file, validate_config
from dreamgym_sdk.errors import ConfigError

if TYPE_CHECKING:
    from dreamgym_sdk.distill import AnnotatedData, DatasetConfig, DistillConfig, DistillDataset
    from dreamgym_sdk.types import Task

__all__ = ["app", "load_config", "parse_mix"]

app = command_group(
    "distill", help="Distil a local experience model from real transitions (annotate, dataset, train)."
)


class AnnotatorChoice(StrEnum):
    """Who writes the reasoning traces."""

    RULES = "rules"
    LLM = "llm"


class RewardChoice(StrEnum):
    """How rewards are stated and predicted."""

    DENSE = "dense"
    OUTCOME = "outcome"


class ExcludeChoice(StrEnum):
    """What retrieval may not return for a training example."""

    EPISODE = "episode"
    TASK = "task"


@app.callback()
def main() -> None:
    """Distil a local experience model from real transitions."""


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not enabled,
    )  # fmt: skip


def tasks_path(path: Path) -> Path:
    """The tasks file written next to annotated transitions: ``x.jsonl`` → ``x.tasks.jsonl``."""
    return path.with_name(f"{path.stem}.tasks.jsonl")


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"full=0.6,no-retrieval=0.2"`` (a bare name weighs 1) into a variant → weight mapping.

    Raises:
        typer.BadParameter: an unknown variant or a weight that is not a non-negative number.
    """
    from dreamgym_sdk.distill import VARIANTS

    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in VARIANTS:
            raise typer.BadParameter(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        try:
            mix[name] = float(weight) if weight else 1.0
        except ValueError:
            raise typer.BadParameter(f"weight of {name!r} is not a number: {weight!r}") from None
    if not mix:
        raise typer.BadParameter("name at least one variant")
    return mix


def load_config(path: Path | None) -> dict[str, Any]:
    """The ``{"dataset": {...}, "distill": {...}}`` tables of a JSON or TOML config file (empty when
    ``path`` is ``None``)."""
    if path is None:
        return {}
    try:
        data = read_config_file(path)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    unknown = set(data) - {"dataset", "distill"}
    if unknown:
        raise typer.BadParameter(f"{path}: unknown table(s) {sorted(unknown)}; use [dataset] and [distill]")
    return data


def _set(values: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """``values`` with the flags that were given (not ``None``) on top."""
    return {**values, **{k: v for k, v in flags.items() if v is not None}}


def _tasks_for(data: Path, tasks: Path | None, games_from: Path | None) -> dict[str, Task]:
    from dreamgym_sdk.distill import read_tasks
    from dreamgym_sdk.integrations.textworld import load_games, textworld_tasks

    found: dict[str, Task] = {}
    default = tasks_path(data)
    if tasks is not None:
        found.update(read_tasks(tasks))
    elif default.is_file():
        found.update(read_tasks(default))
    if games_from is not None:
        found.update(textworld_tasks(load_games(games_from)))
    return found


@app.command("annotate")
def annotate(
    transitions: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL file of real transitions.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Annotated transitions (JSONL).")] = Path(
        "annotated.jsonl"
    ),
    games_from: Annotated[
        Path | None,
        typer.Option(
            "--games-from",
            exists=True,
            file_okay=False,
            help="TextWorld games the transitions were played in.",
        ),
    ] = None,
    annotator: Annotated[
        AnnotatorChoice, typer.Option("--annotator", help="rules (TextWorld ground truth) or llm (teacher).")
    ] = AnnotatorChoice.RULES,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Teacher model string (with --annotator llm).")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")
    ] = None,
    reward_mode: Annotated[
        RewardChoice, typer.Option("--reward-mode", help="How traces state the reward.")
    ] = RewardChoice.DENSE,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Annotations at once.")] = 8,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Write a reasoning trace for every transition (with its provenance) and print a summary."""
    from dreamgym_sdk.collect import read_jsonl
    from dreamgym_sdk.distill import (
        Annotator,
        LLMAnnotator,
        LLMAnnotatorConfig,
        annotate_transitions,
        write_annotated,
        write_tasks,
    )
    from dreamgym_sdk.integrations.textworld import RuleBasedAnnotator, load_games, replay_ground_truth

    items = read_jsonl(transitions)
    if not items:
        raise typer.BadParameter(f"{transitions} holds no transitions")
    if annotator is AnnotatorChoice.LLM and model is None:
        raise typer.BadParameter("--annotator llm needs --model")
    err = Console(stderr=True)

    async def run() -> tuple[AnnotatedData, dict[str, str]]:
        from dreamgym_sdk.providers import get_provider

        games: list[Any] = []
        truth: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        with _progress(err, progress) as bars:
            if games_from is not None:
                games = list(await anyio.to_thread.run_sync(load_games, games_from))
                episodes = len({t.episode_id for t in items})
                replaying = bars.add_task("replaying", total=episodes)
                report = await replay_ground_truth(items, games, on_episode=lambda _: bars.advance(replaying))
                truth, skipped = dict(report.steps), dict(report.skipped)
                write_tasks([g.to_task() for g in games], tasks_path(output))
            annotating = bars.add_task("annotating", total=len(items))
            provider = None
            if annotator is AnnotatorChoice.LLM:
                assert model is not None
                provider = get_provider(model, api_base=api_base) if api_base else get_provider(model)
                chosen: Annotator = LLMAnnotator(
                    provider, config=LLMAnnotatorConfig(reward_mode=reward_mode.value)
                )
            else:
                chosen = RuleBasedAnnotator(reward_mode=reward_mode.value)
            tasks = {g.id: g.to_task() for g in games}
            try:
                data = await annotate_transitions(
                    items, chosen, tasks=tasks, ground_truth=truth, concurrency=concurrency,
                    on_done=lambda _: bars.advance(annotating),
                )  # fmt: skip
            finally:
                if provider is not None:
                    await provider.aclose()
        write_annotated(data, output)
        return data, skipped

    data, skipped = run_async(run)
    with_truth = sum(a.action_admissible is not None for a in data.annotations)
    summary = {
        "transitions": len(data.transitions),
        "annotated": len(data.transitions) - data.failed,
        "failed": data.failed,
        "with_ground_truth": with_truth,
        "not_admissible": sum(a.action_admissible is False for a in data.annotations),
        "episodes_without_ground_truth": skipped,
        "output": str(output),
    }
    typer.echo(json.dumps(summary, indent=2))
    err.print(f"{summary['annotated']}/{summary['transitions']} transitions annotated → {output}")


def _dataset_config(config: dict[str, Any], **flags: Any) -> DatasetConfig:
    from dreamgym_sdk.distill import DatasetConfig

    try:
        return validate_config(
            DatasetConfig, _set(dict(config.get("dataset", {})), **flags), what="[dataset]"
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


async def _build(
    data: Path, config: DatasetConfig, tasks: dict[str, Task], console: Console, progress: bool
) -> DistillDataset:
    from dreamgym_sdk.distill import build_dataset, read_annotated

    annotated = read_annotated(data)
    if not annotated.transitions:
        raise typer.BadParameter(f"{data} holds no transitions")
    with _progress(console, progress) as bars:
        building = bars.add_task("examples", total=len(annotated.transitions))
        return await build_dataset(
            annotated.transitions, tasks=tasks, config=config, on_example=lambda: bars.advance(building)
        )


DataArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Annotated transitions (JSONL).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", exists=True, dir_okay=False, help="JSON or TOML config file.")
]
TasksOpt = Annotated[
    Path | None,
    typer.Option("--tasks", exists=True, dir_okay=False, help="Tasks (JSONL); default: <data>.tasks.jsonl."),
]
GamesOpt = Annotated[
    Path | None,
    typer.Option("--games-from", exists=True, file_okay=False, help="TextWorld games (for tasks)."),
]
KOpt = Annotated[int | None, typer.Option("--k", min=0, help="Retrieved transitions per prompt [1].")]
WindowOpt = Annotated[
    int | None, typer.Option("--history-window", min=0, help="Recent history steps besides step 0 [1].")
]
HistoryCharsOpt = Annotated[
    int | None, typer.Option("--history-max-chars", min=200, help="History budget in characters.")
]
ExampleCharsOpt = Annotated[
    int | None, typer.Option("--example-max-chars", min=100, help="Clip each retrieved field to this.")
]
RewardOpt = Annotated[RewardChoice | None, typer.Option("--reward-mode", help="dense or outcome [dense].")]
ExcludeOpt = Annotated[
    ExcludeChoice | None, typer.Option("--exclude", help="Retrieval never returns this of an example [task].")
]
EmbedderOpt = Annotated[str | None, typer.Option("--embedder", help="minilm, hashing or hf:<path> [minilm].")]
MixOpt = Annotated[
    str | None, typer.Option("--ablation-mix", help="Prompt variants, e.g. full=0.6,no-retrieval=0.2.")
]
HeldOutOpt = Annotated[
    float | None, typer.Option("--held-out-fraction", min=0.0, max=0.99, help="Tasks kept for validation.")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the split, variants and training.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


@app.command("dataset")
def dataset(
    data: DataArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="SFT examples (JSONL).")] = Path("sft.jsonl"),
    config_file: ConfigOpt = None,
    tasks: TasksOpt = None,
    games_from: GamesOpt = None,
    k: KOpt = None,
    history_window: WindowOpt = None,
    history_max_chars: HistoryCharsOpt = None,
    example_max_chars: ExampleCharsOpt = None,
    reward_mode: RewardOpt = None,
    exclude: ExcludeOpt = None,
    embedder: EmbedderOpt = None,
    ablation_mix: MixOpt = None,
    held_out_fraction: HeldOutOpt = None,
    seed: SeedOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Build the SFT examples (training split to OUTPUT, validation split to <output>.valid.jsonl)."""
    from dreamgym_sdk.distill import write_examples

    cfg = _dataset_config(
        load_config(config_file), k=k, history_window=history_window, history_max_chars=history_max_chars,
        example_max_chars=example_max_chars, reward_mode=reward_mode and reward_mode.value,
        exclude=exclude and exclude.value, embedder=embedder,
        ablation_mix=parse_mix(ablation_mix) if ablation_mix else None,
        held_out_fraction=held_out_fraction, seed=seed,
    )  # fmt: skip
    err = Console(stderr=True)
    built = run_async(_build, data, cfg, _tasks_for(data, tasks, games_from), err, progress)
    write_examples(built.train, output)
    valid = output.with_name(f"{output.stem}.valid.jsonl")
    if built.valid:
        write_examples(built.valid, valid)
    summary = {
        "train": len(built.train),
        "valid": len(built.valid),
        "train_tasks": len(built.train_tasks),
        "valid_tasks": len(built.valid_tasks),
        "skipped": built.skipped,
        "config": cfg.model_dump(mode="json"),
    }
    typer.echo(json.dumps(summary, indent=2))


def _distill_config(config: dict[str, Any], student: dict[str, Any], **flags: Any) -> DistillConfig:
    from dreamgym_sdk.distill import DistillConfig

    values = dict(config.get("distill", {}))
    values["student"] = _set(dict(values.get("student", {})), **student)
    try:
        return validate_config(DistillConfig, _set(values, **flags), what="[distill]")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("train")
def train(
    data: DataArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Model directory (load as hf:<dir>).")
    ] = Path("experience-model"),
    config_file: ConfigOpt = None,
    tasks: TasksOpt = None,
    games_from: GamesOpt = None,
    k: KOpt = None,
    history_window: WindowOpt = None,
    history_max_chars: HistoryCharsOpt = None,
    example_max_chars: ExampleCharsOpt = None,
    reward_mode: RewardOpt = None,
    exclude: ExcludeOpt = None,
    embedder: EmbedderOpt = None,
    ablation_mix: MixOpt = None,
    held_out_fraction: HeldOutOpt = None,
    seed: SeedOpt = None,
    base_model: Annotated[
        str | None, typer.Option("--base-model", help="HF model to fine-tune (default: a tiny student).")
    ] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help="Student tokenizer size.")] = None,
    hidden_size: Annotated[int | None, typer.Option("--hidden-size", help="Student hidden size.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Student layers.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Student attention heads.")] = None,
    epochs: Annotated[
        float | None, typer.Option("--epochs", help="Passes over the data [5; 2 pretrained].")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Optimizer steps (overrides epochs).")
    ] = None,
    warmup_lm_steps: Annotated[
        int | None, typer.Option("--warmup-lm-steps", help="First steps trained on the whole text.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Per-device batch size [4].")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", help="Gradient accumulation [1].")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr", help="Peak LR.")] = None,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Longer examples are left out.")
    ] = None,
    lora: Annotated[bool | None, typer.Option("--lora/--no-lora", help="Train LoRA adapters (peft).")] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", help="LoRA rank.")] = None,
    use_cpu: Annotated[bool | None, typer.Option("--cpu/--gpu", help="Force CPU or GPU training.")] = None,
    bf16: Annotated[bool | None, typer.Option("--bf16/--fp32", help="bfloat16 mixed precision.")] = None,
    max_train_seconds: Annotated[
        float | None, typer.Option("--max-train-seconds", help="Stop training after this long.")
    ] = None,
    progress: ProgressOpt = True,
) -> None:
    """Build the SFT examples and distil a model on them; prints the model card as JSON."""
    from dreamgym_sdk.distill import TrainingProgress, distill

    file_config = load_config(config_file)
    dcfg = _dataset_config(
        file_config, k=k, history_window=history_window, history_max_chars=history_max_chars,
        example_max_chars=example_max_chars, reward_mode=reward_mode and reward_mode.value,
        exclude=exclude and exclude.value, embedder=embedder,
        ablation_mix=parse_mix(ablation_mix) if ablation_mix else None,
        held_out_fraction=held_out_fraction, seed=seed,
    )  # fmt: skip
    cfg = _distill_config(
        file_config,
        {"vocab_size": vocab_size, "hidden_size": hidden_size, "layers": layers, "heads": heads},
        base_model=base_model, epochs=epochs, max_steps=max_steps, warmup_lm_steps=warmup_lm_steps,
        batch_size=batch_size, grad_accum=grad_accum, learning_rate=learning_rate, max_length=max_length,
        lora=lora, lora_r=lora_r, use_cpu=use_cpu, bf16=bf16, max_train_seconds=max_train_seconds, seed=seed,
    )  # fmt: skip
    err = Console(stderr=True)

    async def run() -> Any:
        built = await _build(data, dcfg, _tasks_for(data, tasks, games_from), err, progress)
        with _progress(err, progress) as bars:
            training = bars.add_task("training", total=None)

            def report(p: TrainingProgress) -> None:
                loss = "-" if p.loss is None else f"{p.loss:.3f}"
                bars.update(
                    training, completed=p.step, total=p.total_steps, description=f"training (loss {loss})"
                )

            return await distill(built, output, config=cfg, dataset_config=dcfg, on_progress=report)

    result = run_async(run)
    typer.echo(result.card.model_dump_json(indent=2))
    t = result.card.training
    loss = "-" if t.final_loss is None else f"{t.final_loss:.3f}"
    err.print(
        f"trained {t.parameters:,} parameters for {t.steps} steps on {t.examples} examples in "
        f"{t.seconds:.0f} s (final loss {loss}) → hf:{result.path}"
    )
